/* fuzz_spool — libFuzzer target for reading the spool back after crashes and disk damage
 * (daemon/spool.c): recovery of a torn tail on open, readers, inspection and cursor files.
 *
 * The input describes the files of a spool directory: chunks split by S_SEP, each two bytes
 * of header and a body.
 *   byte 0, bits 0-1  0: a segment as it is; 1: a segment whose complete records get their CRC
 *                     fixed (so the fields behind it are reached); 2: a segment renumbered, its
 *                     records' seqs counted from its first and their CRCs fixed, except for a
 *                     record whose kind has bit 15 set (damage), which keeps a wrong CRC;
 *                     3: a cursor file
 *           bits 2-3  segments: 0 or 1 named seg-<first, 20 digits>.log, 2 seg-<first>.log
 *                     (not padded: not a segment, a stray file), 3 a directory of the right
 *                     name
 *           bit 4     in the first chunk: segment_bytes 200 (appends roll) instead of 1 MiB
 *   byte 1  segments 0 and 1: the first seq (1 + byte, 2^32 + (byte - 0xf0) from 0xf0, near
 *           UINT64_MAX from 0xf8); renumbered: the gap of seqs after the previous renumbered
 *           segment; cursor: its name (pg, kafka, rules, or pg.tmp which is not a cursor).
 *
 * Always: inspection and readers leave the files alone; open refuses with a message or opens;
 * open and inspection refuse a layout with a misnamed segment (a file that starts with a
 * CRC-correct record of another seq than its name's), naming the first one unless a name
 * 2^32 seqs after the one before is refused first;
 * a read ends (a read still going after S_MAX_READS results is not waited for and counts as
 * unreadable), its seqs increase, a damaged range loses at least one seq and the next result
 * starts right after it, every record read is a CRC-correct record of the files, byte for
 * byte; opening again changes nothing and reads the same (recovery is idempotent); open only
 * cuts the last segment; a cursor file is refused with a message unless it holds one decimal
 * number in 64 bits, which is what is read.
 * When every segment is renumbered (a spool as the writer leaves it, with torn tails, damaged
 * records and missing segments; none with CRC-correct records left inside its damaged bytes
 * by the mutations, which a reader rightly takes for records), also: readers return exactly the
 * intact records, the same before and after open, and split reads (upto, from) agree with the full
 * read; the next seq follows the last intact record of the last segment; an append after recovery
 * gets that seq, above every seq on disk, and reads back after the rest; inspection reports the
 * first and last intact records.
 *
 * VEM_FUZZ_SEEDS=dir fuzz_spool writes the seed corpus into dir with the real writer and
 * exits (tests/fuzz/corpus/spool/ holds its output). */
#include "fuzz_files.h"
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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

#define S_SEP       "\x1e\x1eVS"
#define S_SEP_LEN   4
#define S_MAX_FILES 16
#define S_HEADER    28
#define S_MAX_READS 2000 /* results of one read; more only from a seq gap of 2^40 and up */
#define S_GAVE_UP   ((vem_spool_read_t)99)
#define S_DAMAGED   0x8000u /* in a renumbered segment: this record keeps a wrong CRC */
#define S_APPEND_US 1234567

static const char *const s_cursor_names[] = {"pg", "kafka", "rules", "pg.tmp"};

#define S_FAIL(...)                                                                                \
    do {                                                                                           \
        fprintf(stderr, "fuzz_spool: " __VA_ARGS__);                                               \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

static uint8_t *s_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *p = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            if (!(p = realloc(p, cap)))
                abort();
        }
        size_t got = fread(p + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    *len = n;
    return p;
}

/* ---- the files an input describes ------------------------------------------------------- */

static void s_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void s_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t s_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

typedef struct {
    uint64_t seq;
    size_t offset, size; /* in its file */
} s_intact_t;

typedef struct {
    char name[64];
    uint8_t *data;
    size_t len;
    bool segment, dir;
    uint64_t first;
    s_intact_t *intact; /* renumbered segments: the records written intact */
    size_t n_intact;
    uint64_t used; /* renumbered segments: seqs its complete records take */
} s_file_t;

typedef struct {
    s_file_t files[S_MAX_FILES];
    size_t n;
    bool strict; /* every segment renumbered and properly named */
    uint64_t segment_bytes;
    bool misnamed;          /* a segment file starts with an intact record of another seq */
    char misnamed_name[64]; /* the first such one, when the refusal must name it; else "" */
} s_layout_t;

static void s_file_clear(s_file_t *f)
{
    free(f->data);
    free(f->intact);
    memset(f, 0, sizeof *f);
}

/* Walks the complete records of a segment body; fixes CRCs (mode 1) or seqs and CRCs (2). */
static void s_fix_records(s_file_t *f, int mode)
{
    size_t o = 0;
    uint64_t seq = f->first;
    while (f->len - o >= S_HEADER) {
        uint8_t *p = f->data + o;
        uint64_t size = S_HEADER + (uint64_t)(p[26] | p[27] << 8) + s_get32(p + 4);
        if (size > f->len - o)
            break;
        bool damaged = false;
        if (mode == 2) {
            s_put64(p + 8, seq);
            damaged = (p[24] | p[25] << 8) & S_DAMAGED;
        }
        s_put32(p, (uint32_t)crc32_z(0, p + 4, (size_t)size - 4) ^ damaged);
        if (mode == 2 && !damaged) {
            f->intact = realloc(f->intact, (f->n_intact + 1) * sizeof *f->intact);
            if (!f->intact)
                abort();
            f->intact[f->n_intact++] = (s_intact_t){seq, o, (size_t)size};
        }
        o += (size_t)size;
        seq++;
    }
    f->used = seq - f->first;
}

/* Does a record with a correct CRC start at offset o of f? */
static bool s_valid_at(const s_file_t *f, size_t o)
{
    if (f->len - o < S_HEADER)
        return false;
    const uint8_t *p = f->data + o;
    uint64_t size = S_HEADER + (uint64_t)(p[26] | p[27] << 8) + s_get32(p + 4);
    return size <= f->len - o && s_get32(p) == (uint32_t)crc32_z(0, p + 4, (size_t)size - 4);
}

/* Records that look intact inside the damaged bytes of a renumbered segment (left there by
 * the bytes the input started from) are not the writer's: such a layout is not strict. */
static bool s_stray_records(const s_file_t *f)
{
    size_t k = 0;
    for (size_t o = 0; o + S_HEADER <= f->len; o++) {
        if (k < f->n_intact && o == f->intact[k].offset) {
            o += f->intact[k++].size - 1;
            continue;
        }
        if (s_valid_at(f, o))
            return true;
    }
    return false;
}

/* Is f a segment file whose first record is CRC-correct and carries another seq than its
 * name's? Such a name would have every record read as damage: the spool refuses it. */
static bool s_misnamed(const s_file_t *f)
{
    if (!f->segment || f->dir || !s_valid_at(f, 0) || s_get32(f->data + 4) > (16u << 20))
        return false;
    uint64_t seq = 0;
    for (int i = 7; i >= 0; i--)
        seq = seq << 8 | f->data[8 + i];
    return seq != f->first;
}

/* Sets l->misnamed and l->misnamed_name: the refusal names the first misnamed segment in seq
 * order, unless a step of 2^32 seqs or more between listed segments is refused before. */
static void s_find_misnamed(s_layout_t *l)
{
    const s_file_t *first = NULL;
    bool steps_ok = true;
    for (size_t i = 0; i < l->n; i++) {
        const s_file_t *f = &l->files[i];
        if (!f->segment)
            continue;
        const s_file_t *prev = NULL; /* the listed segment just below f */
        for (size_t j = 0; j < l->n; j++)
            if (l->files[j].segment && l->files[j].first < f->first &&
                (!prev || l->files[j].first > prev->first))
                prev = &l->files[j];
        if (prev && f->first - prev->first > UINT32_MAX)
            steps_ok = false;
        if (s_misnamed(f) && (!first || f->first < first->first))
            first = f;
    }
    l->misnamed = first != NULL;
    l->misnamed_name[0] = '\0';
    if (first && steps_ok)
        snprintf(l->misnamed_name, sizeof l->misnamed_name, "%s", first->name);
}

static s_file_t *s_add_file(s_layout_t *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->files[i].name, name) == 0) { /* the later chunk replaces the file */
            s_file_clear(&l->files[i]);
            memmove(&l->files[i], &l->files[i + 1], (l->n - i - 1) * sizeof *l->files);
            l->n--;
            break;
        }
    s_file_t *f = &l->files[l->n++];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    return f;
}

static uint64_t s_absolute_first(uint8_t b)
{
    if (b >= 0xf8)
        return UINT64_MAX - (0xffu - b);
    if (b >= 0xf0)
        return (1ull << 32) + (b - 0xf0u);
    return 1u + b;
}

static void s_layout_parse(s_layout_t *l, const uint8_t *data, size_t size)
{
    memset(l, 0, sizeof *l);
    l->strict = true; /* until a chunk says otherwise */
    l->segment_bytes = 1u << 20;
    uint64_t next_first = 1; /* of the next renumbered segment, before its gap */
    size_t at = 0;
    bool first_chunk = true;
    while (at <= size && l->n < S_MAX_FILES) {
        const uint8_t *sep = memmem(data + at, size - at, S_SEP, S_SEP_LEN);
        size_t end = sep ? (size_t)(sep - data) : size;
        const uint8_t *c = data + at;
        size_t clen = end - at;
        at = end + S_SEP_LEN;
        if (clen < 2) {
            if (!sep)
                break;
            continue;
        }
        int mode = c[0] & 3, naming = (c[0] >> 2) & 3;
        if (first_chunk && (c[0] & 0x10))
            l->segment_bytes = 200;
        first_chunk = false;
        char name[64];
        if (mode == 3) {
            snprintf(name, sizeof name, "cursor.%s", s_cursor_names[c[1] % 4]);
            s_file_t *f = s_add_file(l, name);
            f->data = malloc(clen - 2 + 1);
            if (!f->data)
                abort();
            memcpy(f->data, c + 2, clen - 2);
            f->len = clen - 2;
        } else {
            uint64_t first = mode == 2 ? next_first + c[1] : s_absolute_first(c[1]);
            if (mode != 2 || naming >= 2)
                l->strict = false;
            char padded[64];
            snprintf(padded, sizeof padded, "seg-%020" PRIu64 ".log", first);
            if (naming == 2)
                snprintf(name, sizeof name, "seg-%" PRIu64 ".log", first);
            else
                snprintf(name, sizeof name, "%s", padded);
            s_file_t *f = s_add_file(l, name);
            f->segment = strcmp(name, padded) == 0; /* the spool lists no other name */
            f->dir = naming == 3;
            f->first = first;
            f->data = malloc(clen - 2 + 1);
            if (!f->data)
                abort();
            memcpy(f->data, c + 2, clen - 2);
            f->len = clen - 2;
            s_fix_records(f, mode);
            if (mode == 2)
                next_first = first + f->used;
        }
        if (!sep)
            break;
    }
    bool segments = false;
    for (size_t i = 0; i < l->n; i++)
        segments |= l->files[i].segment;
    if (!segments)
        l->strict = false;
    for (size_t i = 0; i < l->n && l->strict; i++)
        if (l->files[i].segment && s_stray_records(&l->files[i]))
            l->strict = false;
    s_find_misnamed(l);
    if (l->misnamed && l->strict)
        S_FAIL("a layout as the writer leaves it has a misnamed segment");
}

static void s_layout_write(const s_layout_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        const s_file_t *f = &l->files[i];
        if (f->dir) {
            char path[512];
            snprintf(path, sizeof path, "%s/%s", fuzz_files_root, f->name);
            if (mkdir(path, 0700) != 0)
                S_FAIL("mkdir %s: %s", path, strerror(errno));
        } else {
            fuzz_files_write(fuzz_files_root, f->name, f->data, f->len);
        }
    }
}

static void s_layout_free(s_layout_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        s_file_clear(&l->files[i]);
    l->n = 0;
}

/* Size of a file of the directory now, -1 when it is gone. */
static long long s_size_now(const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", fuzz_files_root, name);
    if (stat(path, &st) != 0)
        return -1;
    return S_ISDIR(st.st_mode) ? -2 : (long long)st.st_size;
}

/* Every file as written, except that the one named cut may have been cut shorter. */
static void s_check_files(const s_layout_t *l, const char *cut, const char *when)
{
    for (size_t i = 0; i < l->n; i++) {
        const s_file_t *f = &l->files[i];
        long long now = s_size_now(f->name), was = f->dir ? -2 : (long long)f->len;
        bool may_cut = cut && strcmp(cut, f->name) == 0 && now >= 0;
        if (may_cut ? now > was : now != was)
            S_FAIL("%s: %s was %lld bytes, is %lld", when, f->name, was, now);
    }
}

/* ---- reading everything ------------------------------------------------------------------ */

typedef struct {
    vem_spool_read_t rc;
    uint64_t seq;
    uint32_t lost;
    int64_t us;
    uint16_t kind;
    uint8_t *bytes; /* the whole record as on disk (RECORD) or the damaged bytes (DAMAGED) */
    size_t len;
} s_got_t;

typedef struct {
    s_got_t *v;
    size_t n;
} s_list_t;

static void s_list_free(s_list_t *list)
{
    for (size_t i = 0; i < list->n; i++)
        free(list->v[i].bytes);
    free(list->v);
    memset(list, 0, sizeof *list);
}

/* Does some file of the layout hold these bytes? */
static bool s_in_files(const s_layout_t *l, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->files[i].segment && memmem(l->files[i].data, l->files[i].len, p, len))
            return true;
    return false;
}

/* The record as the writer encodes it, from what a reader returned. */
static uint8_t *s_encode(const vem_spool_rec_t *rec, size_t *len)
{
    size_t size = S_HEADER + (size_t)rec->meta_len + rec->data_len;
    uint8_t *p = malloc(size);
    if (!p)
        abort();
    s_put32(p + 4, rec->data_len);
    s_put64(p + 8, rec->seq);
    s_put64(p + 16, (uint64_t)rec->received_us);
    p[24] = (uint8_t)rec->kind;
    p[25] = (uint8_t)(rec->kind >> 8);
    p[26] = (uint8_t)rec->meta_len;
    p[27] = (uint8_t)(rec->meta_len >> 8);
    if (rec->meta_len)
        memcpy(p + S_HEADER, rec->meta, rec->meta_len);
    if (rec->data_len)
        memcpy(p + S_HEADER + rec->meta_len, rec->data, rec->data_len);
    s_put32(p, (uint32_t)crc32_z(0, p + 4, size - 4));
    *len = size;
    return p;
}

/* Reads on with r until END (or an error), appending to list and checking each result.
 * *after is the seq the next result must be above (0 before the first). */
static vem_spool_read_t s_read_on(vem_spool_reader_t *r, uint64_t upto, const s_layout_t *l,
                                  s_list_t *list, uint64_t *after, bool started)
{
    for (int k = 0; k < S_MAX_READS; k++) {
        vem_spool_rec_t rec;
        memset(&rec, 0, sizeof rec);
        vem_spool_read_t rc = vem_spool_reader_next(r, upto, &rec);
        if (rc == VEM_SPOOL_READ_END || rc == VEM_SPOOL_READ_ERROR)
            return rc;
        if (rc != VEM_SPOOL_READ_RECORD && rc != VEM_SPOOL_READ_DAMAGED)
            S_FAIL("reader returned %d", (int)rc);
        if (started && rec.seq <= *after)
            S_FAIL("seq %" PRIu64 " read after %" PRIu64, rec.seq, *after);
        if (rec.seq > upto)
            S_FAIL("seq %" PRIu64 " read with upto %" PRIu64, rec.seq, upto);
        /* after a damaged range the next result starts right after it */
        if (list->n && list->v[list->n - 1].rc == VEM_SPOOL_READ_DAMAGED) {
            const s_got_t *d = &list->v[list->n - 1];
            if (rec.seq != d->seq + d->lost)
                S_FAIL("damaged %" PRIu64 " + %" PRIu32 " then %" PRIu64, d->seq, d->lost, rec.seq);
        }
        s_got_t got = {
            .rc = rc, .seq = rec.seq, .lost = rec.lost, .us = rec.received_us, .kind = rec.kind};
        if (rc == VEM_SPOOL_READ_RECORD) {
            if (rec.lost != 0)
                S_FAIL("record %" PRIu64 " with lost %" PRIu32, rec.seq, rec.lost);
            got.bytes = s_encode(&rec, &got.len);
            if (l && !s_in_files(l, got.bytes, got.len))
                S_FAIL("record %" PRIu64 " (%zu bytes) is in no segment file", rec.seq, got.len);
            *after = rec.seq;
        } else {
            if (rec.lost == 0 || rec.kind != VEM_SPOOL_KIND_QUARANTINE ||
                rec.meta_len != strlen(VEM_SPOOL_DAMAGED_META) ||
                memcmp(rec.meta, VEM_SPOOL_DAMAGED_META, rec.meta_len) != 0 ||
                rec.data_len > (64u << 10) || (rec.data_len && !rec.data))
                S_FAIL("bad damage report at %" PRIu64 ": lost %" PRIu32 ", %" PRIu32 " bytes",
                       rec.seq, rec.lost, rec.data_len);
            if (rec.lost - 1 > UINT64_MAX - rec.seq)
                S_FAIL("damaged %" PRIu64 " + %" PRIu32 " passes the last seq", rec.seq, rec.lost);
            got.len = rec.data_len;
            got.bytes = malloc(got.len + 1);
            if (!got.bytes)
                abort();
            if (got.len)
                memcpy(got.bytes, rec.data, got.len);
            if (l && got.len && !s_in_files(l, got.bytes, got.len))
                S_FAIL("damaged bytes at %" PRIu64 " are in no segment file", rec.seq);
            *after = rec.seq + (rec.lost - 1);
        }
        started = true;
        if ((list->n & (list->n - 1)) == 0) { /* at powers of two */
            list->v = realloc(list->v, (list->n ? 2 * list->n : 1) * sizeof *list->v);
            if (!list->v)
                abort();
        }
        list->v[list->n++] = got;
    }
    /* A segment named far beyond the others: its gap is reported UINT32_MAX seqs at a time
     * (spool.h), 2^32 reports for a name near UINT64_MAX. Not worth waiting for. */
    return S_GAVE_UP;
}

/* Reads everything from `from`: 0 with the results in list, -1 when there is no reader or a
 * read fails. */
static int s_read_all(uint64_t from, const s_layout_t *l, s_list_t *list)
{
    memset(list, 0, sizeof *list);
    char err[512] = "";
    vem_spool_reader_t *r = vem_spool_reader_new(fuzz_files_root, from, err, sizeof err);
    if (!r) {
        if (!err[0])
            S_FAIL("reader refused without a message");
        return -1;
    }
    uint64_t after = 0;
    vem_spool_read_t rc = s_read_on(r, UINT64_MAX, l, list, &after, false);
    vem_spool_reader_destroy(&r);
    if (r)
        S_FAIL("reader_destroy left the pointer");
    return rc == VEM_SPOOL_READ_END ? 0 : -1;
}

static bool s_got_eq(const s_got_t *a, const s_got_t *b)
{
    return a->rc == b->rc && a->seq == b->seq && a->lost == b->lost && a->us == b->us &&
           a->kind == b->kind && a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
}

static void s_same_lists(const s_list_t *a, const s_list_t *b, bool records_only, const char *what)
{
    size_t i = 0, j = 0;
    for (;;) {
        while (records_only && i < a->n && a->v[i].rc != VEM_SPOOL_READ_RECORD)
            i++;
        while (records_only && j < b->n && b->v[j].rc != VEM_SPOOL_READ_RECORD)
            j++;
        if (i == a->n || j == b->n)
            break;
        if (!s_got_eq(&a->v[i], &b->v[j]))
            S_FAIL("%s: result %zu (seq %" PRIu64 ") differs from %zu (seq %" PRIu64 ")", what, i,
                   a->v[i].seq, j, b->v[j].seq);
        i++, j++;
    }
    if (i != a->n || j != b->n)
        S_FAIL("%s: %zu results against %zu", what, a->n, b->n);
}

/* ---- the checks --------------------------------------------------------------------------- */

/* Strict layouts: the records read are exactly the intact ones written, in order, and damaged
 * ranges fill the gaps between them. */
static void s_check_oracle(const s_layout_t *l, const s_list_t *got)
{
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        const s_file_t *f = &l->files[i];
        for (size_t j = 0; j < f->n_intact; j++) {
            while (k < got->n && got->v[k].rc != VEM_SPOOL_READ_RECORD)
                k++;
            if (k == got->n)
                S_FAIL("intact record %" PRIu64 " of %s not read", f->intact[j].seq, f->name);
            const s_got_t *g = &got->v[k++];
            if (g->seq != f->intact[j].seq || g->len != f->intact[j].size ||
                memcmp(g->bytes, f->data + f->intact[j].offset, g->len) != 0)
                S_FAIL("intact record %" PRIu64 " of %s (%zu bytes at %zu) read as %" PRIu64
                       " (%zu bytes)",
                       f->intact[j].seq, f->name, f->intact[j].size, f->intact[j].offset, g->seq,
                       g->len);
        }
    }
    for (; k < got->n; k++)
        if (got->v[k].rc == VEM_SPOOL_READ_RECORD)
            S_FAIL("record %" PRIu64 " read that was not written intact", got->v[k].seq);
}

/* A split read: up to a middle seq, then the rest, is the full read. */
static void s_check_split(const s_layout_t *l, const s_list_t *full)
{
    if (full->n < 2)
        return;
    uint64_t upto = full->v[full->n / 2].seq;
    char err[512] = "";
    vem_spool_reader_t *r = vem_spool_reader_new(fuzz_files_root, 1, err, sizeof err);
    if (!r)
        S_FAIL("reader for a split read: %s", err);
    s_list_t parts = {0};
    uint64_t after = 0;
    if (s_read_on(r, upto, l, &parts, &after, false) != VEM_SPOOL_READ_END)
        S_FAIL("split read up to %" PRIu64 " failed", upto);
    for (size_t i = 0; i < parts.n; i++)
        if (parts.v[i].seq + (parts.v[i].lost ? parts.v[i].lost - 1 : 0) > upto)
            S_FAIL("split read up to %" PRIu64 " gave %" PRIu64, upto, parts.v[i].seq);
    if (s_read_on(r, UINT64_MAX, l, &parts, &after, parts.n > 0) != VEM_SPOOL_READ_END)
        S_FAIL("split read after %" PRIu64 " failed", upto);
    vem_spool_reader_destroy(&r);
    s_same_lists(full, &parts, false, "split read");
    s_list_free(&parts);

    /* from a middle seq: the records from there on */
    s_list_t tail;
    if (s_read_all(upto, l, &tail) != 0)
        S_FAIL("read from %" PRIu64 " failed", upto);
    s_list_t want = {0};
    for (size_t i = 0; i < full->n; i++)
        if (full->v[i].rc == VEM_SPOOL_READ_RECORD && full->v[i].seq >= upto) {
            want.v = realloc(want.v, (want.n + 1) * sizeof *want.v); /* a few: strict */
            if (!want.v)
                abort();
            want.v[want.n++] = full->v[i];
        }
    s_same_lists(&want, &tail, true, "read from a middle seq");
    free(want.v);
    s_list_free(&tail);
}

/* What inspection says about a strict layout's records. */
static void s_check_inspect_strict(const vem_spool_info_t *info, const s_list_t *got)
{
    const s_got_t *first = NULL, *last = NULL;
    for (size_t i = 0; i < got->n; i++)
        if (got->v[i].rc == VEM_SPOOL_READ_RECORD) {
            if (!first)
                first = &got->v[i];
            last = &got->v[i];
        }
    if (first) {
        if (info->first_seq != first->seq || info->last_seq != last->seq ||
            info->first_us != first->us || info->last_us != last->us)
            S_FAIL("inspect: records %" PRIu64 "..%" PRIu64 ", read %" PRIu64 "..%" PRIu64,
                   info->first_seq, info->last_seq, first->seq, last->seq);
    } else if (info->first_seq != info->last_seq + 1 || info->first_us || info->last_us) {
        S_FAIL("inspect: no record, yet %" PRIu64 "..%" PRIu64, info->first_seq, info->last_seq);
    }
}

static void s_check_inspect(const s_layout_t *l, const s_list_t *got)
{
    vem_spool_info_t info;
    char err[512] = "";
    if (vem_spool_inspect(fuzz_files_root, &info, err, sizeof err) != 0) {
        if (!err[0])
            S_FAIL("inspect refused without a message");
        if (info.segments || info.consumers)
            S_FAIL("inspect refused and left memory");
        if (l && l->misnamed_name[0] && !strstr(err, l->misnamed_name))
            S_FAIL("inspect refused a misnamed %s without its name: %s", l->misnamed_name, err);
        return;
    }
    if (l && l->misnamed)
        S_FAIL("inspect took a spool with a misnamed segment");
    uint64_t bytes = 0;
    for (size_t i = 0; i < info.n_segments; i++) {
        if (i && info.segments[i].first_seq <= info.segments[i - 1].first_seq)
            S_FAIL("inspect: segments not ascending");
        bytes += info.segments[i].bytes;
    }
    if (bytes != info.bytes)
        S_FAIL("inspect: %" PRIu64 " bytes, the segments sum to %" PRIu64, info.bytes, bytes);
    for (size_t i = 0; i < info.n_consumers; i++) {
        if (i && strcmp(info.consumers[i - 1].name, info.consumers[i].name) >= 0)
            S_FAIL("inspect: consumers not sorted");
        char err2[512] = "";
        vem_spool_cursor_t *c =
            vem_spool_cursor_open(fuzz_files_root, info.consumers[i].name, err2, sizeof err2);
        if (!c || vem_spool_cursor_get(c) != info.consumers[i].seq)
            S_FAIL("inspect: consumer %s differs from its cursor", info.consumers[i].name);
        vem_spool_cursor_destroy(&c);
    }
    if (l && l->strict) {
        size_t n_segs = 0;
        for (size_t i = 0; i < l->n; i++)
            n_segs += l->files[i].segment;
        if (info.n_segments != n_segs)
            S_FAIL("inspect: %zu segments, %zu written", info.n_segments, n_segs);
    }
    if (got)
        s_check_inspect_strict(&info, got);
    vem_spool_info_free(&info);
    if (info.segments || info.n_segments)
        S_FAIL("info_free left the info");
}

/* A cursor file is read as the decimal number it holds, or refused with a message. */
static void s_check_cursor(const s_file_t *f)
{
    const char *name = f->name + strlen("cursor.");
    char err[512] = "";
    vem_spool_cursor_t *c = vem_spool_cursor_open(fuzz_files_root, name, err, sizeof err);
    if (!c) {
        if (!err[0])
            S_FAIL("cursor %s refused without a message", name);
        return;
    }
    /* accepted: the file must hold digits (and white space around them), in range */
    size_t i = 0;
    while (i < f->len && memchr(" \t\n\r\v\f", f->data[i], 6))
        i++;
    uint64_t v = 0;
    size_t digits = 0;
    for (; i < f->len && f->data[i] >= '0' && f->data[i] <= '9'; i++, digits++) {
        unsigned d = f->data[i] - '0';
        if (v > (UINT64_MAX - d) / 10)
            S_FAIL("cursor %s accepted a number beyond 64 bits", name);
        v = v * 10 + d;
    }
    while (i < f->len && memchr(" \t\n\r\v\f", f->data[i], 6))
        i++;
    if (digits == 0 || i != f->len)
        S_FAIL("cursor %s accepted a file that is not a decimal number (%zu bytes)", name, f->len);
    if (vem_spool_cursor_get(c) != v)
        S_FAIL("cursor %s: %" PRIu64 " read, the file says %" PRIu64, name, vem_spool_cursor_get(c),
               v);
    vem_spool_cursor_destroy(&c);
    if (c)
        S_FAIL("cursor_destroy left the pointer");
}

/* Opens the spool: NULL, after checking the refusal, or a spool in a sane state. */
static vem_spool_t *s_open(const s_layout_t *l)
{
    vem_spool_opts_t opts = {.max_bytes = 1ull << 40, .segment_bytes = l->segment_bytes};
    char err[512] = "";
    vem_spool_t *sp = vem_spool_open(fuzz_files_root, &opts, err, sizeof err);
    if (!sp) {
        if (!err[0])
            S_FAIL("open refused without a message");
        if (l->misnamed_name[0] && !strstr(err, l->misnamed_name))
            S_FAIL("open refused a misnamed %s without its name: %s", l->misnamed_name, err);
        return NULL;
    }
    if (l->misnamed)
        S_FAIL("open took a spool with a misnamed segment");
    if (vem_spool_pending_bytes(sp) != 0 || vem_spool_next_seq(sp) != vem_spool_durable_seq(sp) + 1)
        S_FAIL("opened with next %" PRIu64 ", durable %" PRIu64 ", %" PRIu64 " pending",
               vem_spool_next_seq(sp), vem_spool_durable_seq(sp), vem_spool_pending_bytes(sp));
    return sp;
}

/* The name of the last segment (the one open may cut), "" when there is none. */
static const char *s_last_segment(const s_layout_t *l)
{
    static char name[64];
    const s_file_t *last = NULL;
    for (size_t i = 0; i < l->n; i++)
        if (l->files[i].segment && (!last || l->files[i].first > last->first))
            last = &l->files[i];
    name[0] = '\0';
    if (last)
        snprintf(name, sizeof name, "seg-%020" PRIu64 ".log", last->first);
    return name;
}

/* Strict layouts: the seq open gives the next append. */
static uint64_t s_expected_next(const s_layout_t *l)
{
    const s_file_t *last = NULL;
    for (size_t i = 0; i < l->n; i++)
        if (l->files[i].segment && (!last || l->files[i].first > last->first))
            last = &l->files[i];
    if (!last)
        return 1;
    return last->n_intact ? last->intact[last->n_intact - 1].seq + 1 : last->first;
}

static void s_check_append(vem_spool_t *sp, const s_list_t *before, bool strict)
{
    uint64_t next = vem_spool_next_seq(sp);
    static const uint8_t meta[] = "fuzz", data[] = "appended after recovery";
    vem_spool_rec_t rec = {.received_us = S_APPEND_US,
                           .kind = VEM_SPOOL_KIND_OBD_FRAME,
                           .meta = meta,
                           .meta_len = sizeof meta - 1,
                           .data = data,
                           .data_len = sizeof data - 1};
    if (vem_spool_append(sp, &rec) != 0)
        S_FAIL("append after recovery: %s", strerror(errno));
    if (rec.seq != next)
        S_FAIL("append got %" PRIu64 ", next was %" PRIu64, rec.seq, next);
    int flushed = vem_spool_flush(sp);
    if (!strict)
        return;
    if (flushed != 0)
        S_FAIL("flush after recovery: %s", strerror(errno));
    if (vem_spool_durable_seq(sp) != rec.seq || vem_spool_next_seq(sp) != rec.seq + 1)
        S_FAIL("after a flush: durable %" PRIu64 ", next %" PRIu64 ", appended %" PRIu64,
               vem_spool_durable_seq(sp), vem_spool_next_seq(sp), rec.seq);
    for (size_t i = 0; i < before->n; i++) {
        const s_got_t *g = &before->v[i];
        if (g->seq + (g->lost ? g->lost - 1 : 0) >= rec.seq)
            S_FAIL("appended seq %" PRIu64 " is already on disk (%" PRIu64 ")", rec.seq, g->seq);
    }
    s_list_t after;
    if (s_read_all(1, NULL, &after) != 0)
        S_FAIL("read after an append failed");
    if (after.n != before->n + 1)
        S_FAIL("after an append: %zu results, %zu before", after.n, before->n);
    s_list_t head = {after.v, before->n};
    s_same_lists(before, &head, false, "read after an append");
    const s_got_t *g = &after.v[after.n - 1];
    size_t len;
    rec.seq = next;
    uint8_t *want = s_encode(&rec, &len);
    if (g->rc != VEM_SPOOL_READ_RECORD || g->seq != next || g->len != len ||
        memcmp(g->bytes, want, len) != 0)
        S_FAIL("the appended record %" PRIu64 " does not read back", next);
    free(want);
    s_check_inspect(NULL, &after);
    s_list_free(&after);
}

/* ---- the target --------------------------------------------------------------------------- */

static void s_make_seeds(const char *dir);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *seeds = getenv("VEM_FUZZ_SEEDS");
    fuzz_files_make_root("fuzz-spool");
    if (seeds) {
        s_make_seeds(seeds);
        exit(0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_files_empty(fuzz_files_root);
    s_layout_t l;
    s_layout_parse(&l, data, size);
    s_layout_write(&l);

    for (size_t i = 0; i < l.n; i++)
        if (strncmp(l.files[i].name, "cursor.", 7) == 0 && !strstr(l.files[i].name, ".tmp"))
            s_check_cursor(&l.files[i]);

    /* before open: reading and inspecting touch nothing */
    s_list_t raw = {0};
    bool readable = s_read_all(1, &l, &raw) == 0;
    s_check_files(&l, NULL, "after a read");
    if (l.strict && readable) {
        s_check_oracle(&l, &raw);
        s_check_split(&l, &raw);
    }
    s_check_inspect(&l, l.strict && readable ? &raw : NULL);
    s_check_files(&l, NULL, "after inspect");

    vem_spool_t *sp = s_open(&l);
    if (!sp) {
        if (l.strict)
            S_FAIL("a spool as the writer leaves it was refused");
        s_check_files(&l, NULL, "after a refused open");
        s_list_free(&raw);
        s_layout_free(&l);
        return 0;
    }
    const char *last = s_last_segment(&l);
    s_check_files(&l, last, "after open");
    uint64_t next = vem_spool_next_seq(sp);
    if (l.strict && next != s_expected_next(&l))
        S_FAIL("open: next seq %" PRIu64 ", the last intact record says %" PRIu64, next,
               s_expected_next(&l));
    vem_spool_destroy(&sp);
    if (sp)
        S_FAIL("destroy left the pointer");

    s_list_t recovered = {0};
    bool readable2 = s_read_all(1, &l, &recovered) == 0;
    if (l.strict) {
        if (!readable || !readable2)
            S_FAIL("a spool as the writer leaves it does not read");
        s_same_lists(&raw, &recovered, true, "records before and after open");
    }

    /* open again: nothing changes */
    long long cut_size = s_size_now(last);
    if (!(sp = s_open(&l)))
        S_FAIL("a recovered spool does not open again");
    if (vem_spool_next_seq(sp) != next || s_size_now(last) != cut_size)
        S_FAIL("open again: next %" PRIu64 " (was %" PRIu64 "), %s %lld bytes (was %lld)",
               vem_spool_next_seq(sp), next, last, s_size_now(last), cut_size);
    s_list_t again = {0};
    bool readable3 = s_read_all(1, &l, &again) == 0;
    if (readable2 != readable3)
        S_FAIL("a recovered spool reads differently the second time");
    if (readable2)
        s_same_lists(&recovered, &again, false, "reads after open and after opening again");

    s_check_append(sp, &recovered, l.strict && readable2);
    vem_spool_destroy(&sp);

    s_list_free(&raw);
    s_list_free(&recovered);
    s_list_free(&again);
    s_layout_free(&l);
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

static void s_buf_chunk(s_buf_t *b, uint8_t flags, uint8_t param, const uint8_t *p, size_t len)
{
    if (b->len)
        s_buf_add(b, S_SEP, S_SEP_LEN);
    uint8_t h[2] = {flags, param};
    s_buf_add(b, h, 2);
    s_buf_add(b, p, len);
}

/* Fills fuzz_files_root with records 1..n through the real writer. */
static void s_seed_spool(unsigned n, uint64_t segment_bytes)
{
    fuzz_files_empty(fuzz_files_root);
    vem_spool_opts_t opts = {.max_bytes = 1u << 20, .segment_bytes = segment_bytes};
    char err[512];
    vem_spool_t *sp = vem_spool_open(fuzz_files_root, &opts, err, sizeof err);
    if (!sp)
        S_FAIL("seed spool: %s", err);
    for (unsigned i = 1; i <= n; i++) {
        char meta[32];
        uint8_t data[40];
        int meta_len = snprintf(meta, sizeof meta, "tcp 10.0.0.%u:%u", i, 40000 + i);
        for (size_t k = 0; k < sizeof data; k++)
            data[k] = (uint8_t)(i * 31 + k);
        vem_spool_rec_t rec = {.received_us = 1700000000000000LL + i * 1000,
                               .kind = (uint16_t)(i % 3 + 1),
                               .meta = (const uint8_t *)meta,
                               .meta_len = (uint16_t)meta_len,
                               .data = data,
                               .data_len = (uint32_t)(8 + i % 32)};
        if (vem_spool_append(sp, &rec) != 0)
            S_FAIL("seed append: %s", strerror(errno));
    }
    if (vem_spool_flush(sp) != 0)
        S_FAIL("seed flush: %s", strerror(errno));
    vem_spool_destroy(&sp);
}

/* The segment starting at first as written. */
static uint8_t *s_seed_segment(uint64_t first, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/seg-%020" PRIu64 ".log", fuzz_files_root, first);
    uint8_t *p = s_read_file(path, len);
    if (!p)
        S_FAIL("seed segment %s missing", path);
    return p;
}

/* Segment firsts of fuzz_files_root, ascending; returns how many. */
static size_t s_seed_firsts(uint64_t *firsts, size_t cap)
{
    vem_spool_info_t info;
    char err[512];
    if (vem_spool_inspect(fuzz_files_root, &info, err, sizeof err) != 0)
        S_FAIL("seed inspect: %s", err);
    size_t n = info.n_segments < cap ? info.n_segments : cap;
    for (size_t i = 0; i < n; i++)
        firsts[i] = info.segments[i].first_seq;
    vem_spool_info_free(&info);
    return n;
}

static void s_seed_save(const char *dir, const char *name, s_buf_t *b)
{
    fuzz_files_write(dir, name, b->p, b->len);
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* The seeds: the real writer's segments, renumbered or as they are, several of them, with a
 * torn tail, a damaged record, a missing segment, cursors. */
static void s_make_seeds(const char *dir)
{
    s_buf_t b = {0};
    uint64_t firsts[16];
    size_t len;
    uint8_t *seg;

    /* one segment of three records, renumbered; and as it is */
    s_seed_spool(3, 1u << 16);
    seg = s_seed_segment(1, &len);
    s_buf_chunk(&b, 2, 0, seg, len);
    s_seed_save(dir, "one-segment", &b);
    s_buf_chunk(&b, 0, 0, seg, len);
    s_seed_save(dir, "one-segment-as-is", &b);
    /* the same named seg-5: refused, not cut to nothing */
    s_buf_chunk(&b, 0, 4, seg, len);
    s_seed_save(dir, "misnamed-segment", &b);
    /* a torn tail: the last record cut short */
    s_buf_chunk(&b, 2, 0, seg, len - 5);
    s_seed_save(dir, "torn-tail", &b);
    /* the second record damaged (kind bit 15: its CRC stays wrong), the third intact */
    size_t second = S_HEADER + (seg[26] | seg[27] << 8) + s_get32(seg + 4);
    seg[second + 25] |= 0x80;
    s_buf_chunk(&b, 2, 0, seg, len);
    s_seed_save(dir, "damaged-record", &b);
    free(seg);

    /* several segments and cursors (segment_bytes 200 for appends) */
    s_seed_spool(12, 200);
    size_t n = s_seed_firsts(firsts, 16);
    for (size_t i = 0; i < n; i++) {
        seg = s_seed_segment(firsts[i], &len);
        s_buf_chunk(&b, i == 0 ? 0x12 : 2, 0, seg, len);
        free(seg);
    }
    s_buf_chunk(&b, 3, 0, (const uint8_t *)"4\n", 2);
    s_buf_chunk(&b, 3, 1, (const uint8_t *)"11\n", 3);
    s_seed_save(dir, "segments-and-cursors", &b);
    /* the same as they are, named by their first seqs; the middle one missing */
    for (size_t i = 0; i < n; i++) {
        if (i == n / 2)
            continue;
        seg = s_seed_segment(firsts[i], &len);
        s_buf_chunk(&b, i == 0 ? 0x10 : 0, (uint8_t)(firsts[i] - 1), seg, len);
        free(seg);
    }
    s_seed_save(dir, "missing-segment", &b);
    /* all there, the last one named two seqs after its first record */
    for (size_t i = 0; i < n; i++) {
        seg = s_seed_segment(firsts[i], &len);
        s_buf_chunk(&b, i == 0 ? 0x10 : 0, (uint8_t)(firsts[i] - 1 + (i + 1 == n ? 2 : 0)), seg,
                    len);
        free(seg);
    }
    s_seed_save(dir, "misnamed-last-segment", &b);
    /* renumbered with a gap of 5 seqs before the last segment */
    for (size_t i = 0; i < n; i++) {
        seg = s_seed_segment(firsts[i], &len);
        s_buf_chunk(&b, 2, i + 1 == n ? 5 : 0, seg, len);
        free(seg);
    }
    s_seed_save(dir, "gap", &b);

    /* an empty spool as open creates it, and an unreadable cursor */
    s_buf_chunk(&b, 2, 0, NULL, 0);
    s_buf_chunk(&b, 3, 2, (const uint8_t *)"x\n", 2);
    s_seed_save(dir, "empty-and-bad-cursor", &b);
    fuzz_files_empty(fuzz_files_root);
}
