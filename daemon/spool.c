/* spool — append-only segmented input log with per-consumer cursors; see spool.h.
 *
 * Layout of the directory:
 *   seg-<first seq, 20 digits>.log   records in seq order; the name says where it starts
 *   cursor.<name>                    one decimal seq per consumer, replaced atomically
 *
 * A record is a 28-byte little-endian header followed by meta and data:
 *   u32 crc32 (zlib) of everything after this field | u32 data_len | u64 seq |
 *   i64 received_us | u16 kind | u16 meta_len
 *
 * Writing. Appending only encodes the record into a pending buffer in memory. A flush moves
 * pending records to disk one segment at a time: pwrite at the segment's durable end,
 * fdatasync, and only then count them durable and drop them from memory. A record that would
 * take a non-empty segment past segment_bytes starts the next segment, seg-<its seq>.log,
 * which is created and its directory entry synced while the old segment stays open; the old
 * one is closed once the new one holds durable records. Any failure cuts the active segment
 * back to its durable end and removes a segment the flush created, and the records stay
 * pending for the next flush, which rewrites them (rewriting, rather than retrying fdatasync,
 * is also what makes a failed fdatasync safe: the kernel may have dropped the dirty pages).
 * So the disk never holds a partial record except after a crash. Every segment holds at most
 * segment_bytes, or one record alone, and a record is at most max_bytes / 2: with max_bytes at
 * least twice segment_bytes, trimming can always make room for any accepted record.
 *
 * Recovery. Only the last segment can be torn by a crash: on open it is scanned and cut after
 * the last intact record. A damaged record followed by intact ones is not a torn tail: the
 * scan steps over it (readers report it) instead of cutting acknowledged records away. Records
 * are read by the seqs that segment names lead to expect, so a name is checked first: a
 * segment whose first record is intact and of another seq (renamed by hand or damaged) would
 * read as nothing but damage, and the last one be cut to nothing. Open, inspection and readers
 * refuse such a spool instead, with the name, for the operator to set right.
 *
 * Thread: the owner of vem_spool_t (ingest) only; readers and cursors are separate objects.
 * Inspection (vemctl spool status) only reads, through readers and cursors of its own. */
#include "spool.h"

#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define S_HEADER         28
#define S_MAX_DATA       (16u << 20)  /* a record larger than this is corruption */
#define S_PENDING        (256u << 10) /* initial size of the pending buffer */
#define S_SCAN_WINDOW    (64u << 10)
#define S_PATH           4096
#define S_SEGMENT_FORMAT "%s/seg-%020" PRIu64 ".log"

typedef struct {
    uint64_t first; /* seq of its first record, and its name */
    uint64_t bytes; /* durable size */
} s_segment_t;

struct vem_spool {
    char dir[S_PATH];
    vem_spool_opts_t opts;
    int fd;            /* the active (last) segment */
    bool dirty;        /* it may hold bytes past its durable size: a cut failed */
    s_segment_t *segs; /* ascending; the last is the active one */
    size_t n_segs, cap_segs;
    uint64_t next_seq;    /* seq of the next append */
    uint64_t durable_seq; /* every seq <= it is on disk (and synced when opts.fsync) */
    uint64_t disk_bytes;  /* sum of segs[].bytes */
    uint8_t *pend;        /* encoded records durable_seq + 1 .. next_seq - 1 */
    size_t pend_len, pend_cap;
};

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

static uint64_t s_get64(const uint8_t *p)
{
    return (uint64_t)s_get32(p) | (uint64_t)s_get32(p + 4) << 32;
}

/* Size of the record whose header is at p. */
static uint64_t s_record_size(const uint8_t *p)
{
    return S_HEADER + (uint64_t)(p[26] | p[27] << 8) + s_get32(p + 4);
}

static void s_segment_path(char *out, size_t cap, const char *dir, uint64_t first)
{
    snprintf(out, cap, S_SEGMENT_FORMAT, dir, first);
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* True when p holds len (1 to 20) decimal digits of a value that fits; sets *v. */
static bool s_parse_digits(const char *p, size_t len, uint64_t *v)
{
    if (len == 0 || len > 20)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        unsigned d = (unsigned)(p[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *v = x;
    return true;
}

/* True when name is one the spool gives a segment, seg-<first, 20 digits>.log with first > 0;
 * sets *first. Only those: a segment is opened again by the name its first seq makes, so a
 * name that makes another (seg-5.log, seg-+5.log) would be listed and never found. */
static bool s_segment_name(const char *name, uint64_t *first)
{
    static const char prefix[] = "seg-", suffix[] = ".log";
    const size_t digits = 20;
    if (strlen(name) != sizeof prefix - 1 + digits + sizeof suffix - 1 ||
        memcmp(name, prefix, sizeof prefix - 1) != 0 ||
        strcmp(name + sizeof prefix - 1 + digits, suffix) != 0)
        return false;
    return s_parse_digits(name + sizeof prefix - 1, digits, first) && *first > 0;
}

/* Lists the segments of dir into a malloc'd ascending array of their first seqs. */
static int s_list_segments(const char *dir, uint64_t **out, size_t *n_out)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    size_t n = 0, cap = 16;
    uint64_t *firsts = malloc(cap * sizeof *firsts);
    if (!firsts)
        abort();
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t first;
        if (!s_segment_name(e->d_name, &first))
            continue;
        if (n == cap) {
            cap *= 2;
            firsts = realloc(firsts, cap * sizeof *firsts);
            if (!firsts)
                abort();
        }
        firsts[n++] = first;
    }
    closedir(d);
    qsort(firsts, n, sizeof *firsts, s_cmp_u64);
    *out = firsts;
    *n_out = n;
    return 0;
}

/* Most seqs from one segment's first to the next one's. The writer names a new segment
 * durable_seq + 1 and a segment holds at most segment_bytes / 28 records, so a larger step
 * is a damaged name; reading across it would report the gap UINT32_MAX seqs at a time, 2^32
 * times for a name near UINT64_MAX. */
#define S_MAX_STEP UINT32_MAX

/* -1 with a message naming the segment when one starts more than S_MAX_STEP seqs after the
 * one before it. */
static int s_check_steps(const char *dir, const uint64_t *firsts, size_t n, char *err,
                         size_t errlen)
{
    for (size_t i = 1; i < n; i++)
        if (firsts[i] - firsts[i - 1] > S_MAX_STEP) {
            snprintf(err, errlen,
                     "spool %s: seg-%020" PRIu64 ".log starts %" PRIu64
                     " seqs after seg-%020" PRIu64
                     ".log: its name is damaged (move the file out of the spool)",
                     dir, firsts[i], firsts[i] - firsts[i - 1], firsts[i - 1]);
            return -1;
        }
    return 0;
}

/* Reads one record at offset of fd into *buf (grown as needed). Returns the record size, 0
 * when no complete, intact record with seq == expected starts there, -1 on an I/O error. */
static ssize_t s_read_record(int fd, uint64_t offset, uint64_t expected, uint8_t **buf, size_t *cap,
                             vem_spool_rec_t *rec)
{
    uint8_t hdr[S_HEADER];
    ssize_t n = pread(fd, hdr, S_HEADER, (off_t)offset);
    if (n != S_HEADER)
        return n < 0 ? -1 : 0;
    uint32_t data_len = s_get32(hdr + 4);
    uint16_t meta_len = (uint16_t)(hdr[26] | hdr[27] << 8);
    if (data_len > S_MAX_DATA || s_get64(hdr + 8) != expected)
        return 0;
    size_t size = S_HEADER + (size_t)meta_len + data_len;
    if (size > *cap) {
        uint8_t *grown = realloc(*buf, size);
        if (!grown)
            abort();
        *buf = grown;
        *cap = size;
    }
    memcpy(*buf, hdr, S_HEADER);
    size_t body = size - S_HEADER;
    if (body) {
        n = pread(fd, *buf + S_HEADER, body, (off_t)(offset + S_HEADER));
        if (n != (ssize_t)body)
            return n < 0 ? -1 : 0;
    }
    uint32_t crc = (uint32_t)crc32_z(0, *buf + 4, size - 4);
    if (crc != s_get32(*buf))
        return 0;
    if (rec) {
        rec->seq = expected;
        rec->received_us = (int64_t)s_get64(*buf + 16);
        rec->kind = (uint16_t)((*buf)[24] | (*buf)[25] << 8);
        rec->meta_len = meta_len;
        rec->meta = *buf + S_HEADER;
        rec->data_len = data_len;
        rec->data = *buf + S_HEADER + meta_len;
    }
    return (ssize_t)size;
}

/* Finds the first intact record in [offset, end) of fd whose seq is from or above, trying
 * every byte position; sets *at and *seq. 1 found, 0 none, -1 on an I/O error. *buf is
 * clobbered. No upper bound on the seq: the first intact record is where reading goes on,
 * and one passed over for being too new would let a later record's data, which terminals
 * choose, pass for a lost seq if it held one with a valid CRC. `from` is the seq expected at
 * offset: as records are at least S_HEADER bytes and consecutive, one k bytes further on has
 * a seq of at most from + k / S_HEADER, which rejects nearly every position of damaged bytes
 * on its header alone. A window of the file is read at a time; only a plausible header costs
 * a full read and a CRC. */
static int s_scan(int fd, uint64_t offset, uint64_t end, uint64_t from, uint8_t **buf, size_t *cap,
                  uint64_t *at, uint64_t *seq)
{
    uint8_t *win = malloc(S_SCAN_WINDOW);
    if (!win)
        abort();
    int rc = 0;
    uint64_t base = offset, have = 0;
    for (uint64_t o = offset; o + S_HEADER <= end; o++) {
        if (o + S_HEADER > base + have) {
            uint64_t want = end - o < S_SCAN_WINDOW ? end - o : S_SCAN_WINDOW;
            ssize_t n = pread(fd, win, want, (off_t)o);
            if (n < 0) {
                rc = -1;
                break;
            }
            base = o;
            have = (uint64_t)n;
            if (have < S_HEADER)
                break;
        }
        const uint8_t *h = win + (o - base);
        uint64_t s = s_get64(h + 8);
        if (s < from || s - from > (o - offset) / S_HEADER || s_get32(h + 4) > S_MAX_DATA ||
            o + s_record_size(h) > end)
            continue;
        ssize_t size = s_read_record(fd, o, s, buf, cap, NULL);
        if (size < 0) {
            rc = -1;
            break;
        }
        if (size > 0) {
            *at = o;
            *seq = s;
            rc = 1;
            break;
        }
    }
    free(win);
    return rc;
}

/* Compares the name of the segment starting at `first`, open as fd, with the seq of the record
 * at its start, read whatever seq it carries: 1 when that record is intact (complete, its CRC
 * right) and another seq (*holds), 0 when it is the named seq or no intact record starts the
 * file (empty, torn by a crash, damaged: readers report those), -1 on an I/O error. Reading a
 * segment by a name that is not its records' would take every record in it for damage, and
 * recovery would cut them off the last segment: a name is only trusted after this. */
static int s_misnamed(int fd, uint64_t first, uint8_t **buf, size_t *cap, uint64_t *holds)
{
    uint8_t hdr[S_HEADER];
    ssize_t n = pread(fd, hdr, S_HEADER, 0);
    if (n != S_HEADER)
        return n < 0 ? -1 : 0;
    uint64_t seq = s_get64(hdr + 8);
    if (seq == first)
        return 0;
    ssize_t size = s_read_record(fd, 0, seq, buf, cap, NULL);
    if (size <= 0)
        return size < 0 ? -1 : 0;
    *holds = seq;
    return 1;
}

/* The refusal of the segment starting at `first` whose records start at holds; the file to
 * rename it to unless one of firsts (n of them) has that name already. */
static void s_misnamed_message(const char *dir, uint64_t first, uint64_t holds,
                               const uint64_t *firsts, size_t n, char *err, size_t errlen)
{
    bool taken = false;
    for (size_t i = 0; i < n; i++)
        taken |= firsts[i] == holds;
    snprintf(err, errlen,
             "spool %s: seg-%020" PRIu64 ".log holds records from seq %" PRIu64
             " on, not from %" PRIu64 " as its name says: its name is damaged (%s seg-%020" PRIu64
             ".log%s)",
             dir, first, holds, first, taken ? "another file is named" : "rename it to", holds,
             taken ? " too: move one of the two out of the spool" : "");
}

/* -1 with a message when a segment of dir (firsts, n of them) is misnamed (s_misnamed). Reads
 * one record per segment. A segment that cannot be opened or read (trimmed meanwhile, not a
 * file, an I/O error) is left to the readers, which report it. */
static int s_check_names(const char *dir, const uint64_t *firsts, size_t n, char *err,
                         size_t errlen)
{
    uint8_t *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char path[S_PATH + 32];
        s_segment_path(path, sizeof path, dir, firsts[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        uint64_t holds = 0;
        if (s_misnamed(fd, firsts[i], &buf, &cap, &holds) > 0) {
            s_misnamed_message(dir, firsts[i], holds, firsts, n, err, errlen);
            rc = -1;
        }
        close(fd);
    }
    free(buf);
    return rc;
}

int vem_spool_opts_check(const vem_spool_opts_t *opts, char *err, size_t errlen)
{
    if (opts->segment_bytes == 0) {
        snprintf(err, errlen, "spool: segment_bytes must be above 0");
        return -1;
    }
    if (opts->segment_bytes > UINT64_MAX / 2 || opts->max_bytes < 2 * opts->segment_bytes) {
        snprintf(err, errlen,
                 "spool: max_bytes (%" PRIu64 ") must be at least twice segment_bytes (%" PRIu64
                 "): the active segment is never trimmed, so a smaller spool can stall intake "
                 "for good",
                 opts->max_bytes, opts->segment_bytes);
        return -1;
    }
    return 0;
}

static void s_push_segment(vem_spool_t *self, uint64_t first, uint64_t bytes)
{
    if (self->n_segs == self->cap_segs) {
        self->cap_segs = self->cap_segs ? self->cap_segs * 2 : 16;
        self->segs = realloc(self->segs, self->cap_segs * sizeof *self->segs);
        if (!self->segs)
            abort();
    }
    self->segs[self->n_segs++] = (s_segment_t){.first = first, .bytes = bytes};
    self->disk_bytes += bytes;
}

/* Scans the active segment, cuts a torn tail and finds the next seq. */
static int s_recover_tail(vem_spool_t *self, char *err, size_t errlen)
{
    s_segment_t *seg = &self->segs[self->n_segs - 1];
    struct stat st;
    if (fstat(self->fd, &st) != 0) {
        snprintf(err, errlen, "spool %s: %s", self->dir, strerror(errno));
        return -1;
    }
    uint8_t *buf = NULL;
    size_t cap = 0;
    uint64_t end = (uint64_t)st.st_size, offset = 0, seq = seg->first;
    for (;;) {
        ssize_t size = s_read_record(self->fd, offset, seq, &buf, &cap, NULL);
        if (size > 0) {
            offset += (uint64_t)size;
            seq++;
            continue;
        }
        uint64_t at = 0, next = 0;
        int found = size < 0 ? -1 : s_scan(self->fd, offset, end, seq, &buf, &cap, &at, &next);
        if (found <= 0) {
            free(buf);
            if (found == 0)
                break;
            snprintf(err, errlen, "spool %s: reading the last segment: %s", self->dir,
                     strerror(errno));
            return -1;
        }
        offset = at; /* damage, not a torn tail: an intact record follows */
        seq = next;
    }
    if (offset < end && ftruncate(self->fd, (off_t)offset) != 0) {
        snprintf(err, errlen, "spool %s: cutting torn tail: %s", self->dir, strerror(errno));
        return -1;
    }
    self->disk_bytes = self->disk_bytes - seg->bytes + offset;
    seg->bytes = offset;
    self->next_seq = seq;
    self->durable_seq = seq - 1;
    return 0;
}

vem_spool_t *vem_spool_open(const char *dir, const vem_spool_opts_t *opts, char *err, size_t errlen)
{
    if (vem_spool_opts_check(opts, err, errlen) != 0)
        return NULL;
    vem_spool_t *self = calloc(1, sizeof *self);
    if (!self)
        abort();
    self->fd = -1;
    self->opts = *opts;
    uint64_t *firsts = NULL;
    size_t n = 0;
    char path[S_PATH + 32];
    if (snprintf(self->dir, sizeof self->dir, "%s", dir) >= (int)sizeof self->dir) {
        snprintf(err, errlen, "spool %s: path too long", dir);
        goto fail;
    }
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "spool %s: %s", dir, strerror(errno));
        goto fail;
    }
    if (s_list_segments(dir, &firsts, &n) != 0) {
        snprintf(err, errlen, "spool %s: %s", dir, strerror(errno));
        goto fail;
    }
    if (s_check_steps(dir, firsts, n, err, errlen) != 0 ||
        s_check_names(dir, firsts, n, err, errlen) != 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        s_segment_path(path, sizeof path, dir, firsts[i]);
        s_push_segment(self, firsts[i], stat(path, &st) == 0 ? (uint64_t)st.st_size : 0);
    }
    if (n == 0) {
        s_segment_path(path, sizeof path, dir, 1);
        self->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
        if (self->fd < 0 || (opts->fsync && vem_fileio_fsync_dir(dir) != 0)) {
            snprintf(err, errlen, "spool %s: creating first segment: %s", dir, strerror(errno));
            goto fail;
        }
        s_push_segment(self, 1, 0);
    } else {
        s_segment_path(path, sizeof path, dir, firsts[n - 1]);
        self->fd = open(path, O_RDWR | O_CLOEXEC);
        if (self->fd < 0) {
            snprintf(err, errlen, "spool %s: %s", path, strerror(errno));
            goto fail;
        }
    }
    if (s_recover_tail(self, err, errlen) != 0)
        goto fail;
    free(firsts);
    self->pend_cap = S_PENDING;
    self->pend = malloc(self->pend_cap);
    if (!self->pend)
        abort();
    return self;
fail:
    if (self->fd >= 0)
        close(self->fd);
    free(firsts);
    free(self->segs);
    free(self);
    return NULL;
}

/* Cuts the active segment back to its durable size after a failed write. */
static int s_cut(vem_spool_t *self)
{
    self->dirty = ftruncate(self->fd, (off_t)self->segs[self->n_segs - 1].bytes) != 0;
    return self->dirty ? -1 : 0;
}

/* Writes len bytes of whole records at the durable end of the active segment and syncs. */
static int s_write_active(vem_spool_t *self, const uint8_t *p, size_t len)
{
    s_segment_t *seg = &self->segs[self->n_segs - 1];
    if (vem_fileio_pwrite_all(self->fd, p, len, seg->bytes) != 0 ||
        (self->opts.fsync && fdatasync(self->fd) != 0)) {
        int saved = errno;
        s_cut(self);
        errno = saved;
        return -1;
    }
    seg->bytes += len;
    self->disk_bytes += len;
    return 0;
}

/* Starts segment `first` with len bytes of whole records. The old segment stays open and
 * active until the new one holds them durably; on failure the new one is removed. */
static int s_roll(vem_spool_t *self, uint64_t first, const uint8_t *p, size_t len)
{
    char path[S_PATH + 32];
    s_segment_path(path, sizeof path, self->dir, first);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    if ((self->opts.fsync && vem_fileio_fsync_dir(self->dir) != 0) ||
        vem_fileio_pwrite_all(fd, p, len, 0) != 0 || (self->opts.fsync && fdatasync(fd) != 0)) {
        int saved = errno;
        bool emptied = ftruncate(fd, 0) == 0;
        if (unlink(path) == 0 || errno == ENOENT) {
            close(fd);
            if (self->opts.fsync)
                vem_fileio_fsync_dir(
                    self->dir); /* best effort: an empty last segment is harmless */
        } else {
            /* It cannot go: it becomes the active segment, empty (or cut at the next flush). */
            close(self->fd);
            self->fd = fd;
            s_push_segment(self, first, 0);
            self->dirty = !emptied;
        }
        errno = saved;
        return -1;
    }
    close(self->fd); /* everything in it is durable */
    self->fd = fd;
    self->dirty = false;
    s_push_segment(self, first, len);
    return 0;
}

int vem_spool_flush(vem_spool_t *self)
{
    if (self->dirty && s_cut(self) != 0)
        return -1;
    size_t done = 0;
    int rc = 0;
    while (done < self->pend_len) {
        /* The run: the pending records that go, in order, into one segment. */
        uint64_t active = self->segs[self->n_segs - 1].bytes;
        bool roll =
            active > 0 && active + s_record_size(self->pend + done) > self->opts.segment_bytes;
        uint64_t base = roll ? 0 : active, run = 0, count = 0;
        while (done + run < self->pend_len) {
            uint64_t size = s_record_size(self->pend + done + run);
            if (base + run > 0 && base + run + size > self->opts.segment_bytes)
                break;
            run += size;
            count++;
        }
        const uint8_t *p = self->pend + done;
        rc = roll ? s_roll(self, self->durable_seq + 1, p, run) : s_write_active(self, p, run);
        if (rc != 0)
            break;
        done += run;
        self->durable_seq += count;
    }
    int saved = errno;
    if (done > 0) {
        memmove(self->pend, self->pend + done, self->pend_len - done);
        self->pend_len -= done;
    }
    if (self->pend_len == 0 && self->pend_cap > 4 * S_PENDING) { /* after a very large batch */
        free(self->pend);
        self->pend_cap = S_PENDING;
        self->pend = malloc(self->pend_cap);
        if (!self->pend)
            abort();
    }
    errno = saved;
    return rc;
}

bool vem_spool_has_room(const vem_spool_t *self, size_t payload_len)
{
    return self->disk_bytes + self->pend_len + S_HEADER + payload_len <= self->opts.max_bytes;
}

int vem_spool_append(vem_spool_t *self, vem_spool_rec_t *rec)
{
    uint64_t size = S_HEADER + (uint64_t)rec->meta_len + rec->data_len;
    if (rec->data_len > S_MAX_DATA || size > self->opts.max_bytes / 2) {
        errno = EMSGSIZE;
        return -1;
    }
    if (!vem_spool_has_room(self, size - S_HEADER)) {
        errno = ENOSPC;
        return -1;
    }
    if (self->pend_len + size > self->pend_cap) {
        while (self->pend_len + size > self->pend_cap)
            self->pend_cap *= 2;
        self->pend = realloc(self->pend, self->pend_cap);
        if (!self->pend)
            abort();
    }
    uint8_t *p = self->pend + self->pend_len;
    s_put32(p + 4, rec->data_len);
    s_put64(p + 8, self->next_seq);
    s_put64(p + 16, (uint64_t)rec->received_us);
    p[24] = (uint8_t)rec->kind;
    p[25] = (uint8_t)(rec->kind >> 8);
    p[26] = (uint8_t)rec->meta_len;
    p[27] = (uint8_t)(rec->meta_len >> 8);
    if (rec->meta_len)
        memcpy(p + S_HEADER, rec->meta, rec->meta_len);
    if (rec->data_len)
        memcpy(p + S_HEADER + rec->meta_len, rec->data, rec->data_len);
    /* One pass over the encoded bytes: zlib's crc32_z restarts at 0 when given NULL. */
    s_put32(p, (uint32_t)crc32_z(0, p + 4, (size_t)size - 4));
    self->pend_len += (size_t)size;
    rec->seq = self->next_seq++;
    return 0;
}

int vem_spool_trim(vem_spool_t *self, uint64_t upto)
{
    size_t drop = 0;
    int rc = 0;
    /* Segment i holds seqs segs[i].first .. segs[i+1].first - 1; the active one stays. */
    while (drop + 1 < self->n_segs && self->segs[drop + 1].first - 1 <= upto) {
        char path[S_PATH + 32];
        s_segment_path(path, sizeof path, self->dir, self->segs[drop].first);
        if (unlink(path) != 0 && errno != ENOENT) {
            rc = -1;
            break;
        }
        self->disk_bytes -= self->segs[drop].bytes;
        drop++;
    }
    if (drop) {
        memmove(self->segs, self->segs + drop, (self->n_segs - drop) * sizeof *self->segs);
        self->n_segs -= drop;
    }
    return rc;
}

uint64_t vem_spool_next_seq(const vem_spool_t *self)
{
    return self->next_seq;
}

uint64_t vem_spool_durable_seq(const vem_spool_t *self)
{
    return self->durable_seq;
}

uint64_t vem_spool_first_seq(const vem_spool_t *self)
{
    return self->segs[0].first;
}

uint64_t vem_spool_pending_bytes(const vem_spool_t *self)
{
    return self->pend_len;
}

uint64_t vem_spool_bytes(const vem_spool_t *self)
{
    return self->disk_bytes + self->pend_len;
}

void vem_spool_destroy(vem_spool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    vem_spool_t *self = *self_p;
    if (self->fd >= 0) {
        vem_spool_flush(self);
        close(self->fd);
    }
    free(self->pend);
    free(self->segs);
    free(self);
    *self_p = NULL;
}

/* ---- readers --------------------------------------------------------------------------- */

#define S_DAMAGED_MAX (64u << 10) /* damaged bytes handed out with a DAMAGED report */

struct vem_spool_reader {
    char dir[S_PATH];
    int fd;             /* the current segment */
    uint64_t seg_first; /* its first seq */
    uint64_t offset;    /* read position in it */
    uint64_t expected;  /* seq of the next record */
    uint64_t from;      /* records below it are skipped */
    int64_t last_us;    /* receipt time of the last record read */
    uint8_t *buf;
    size_t cap;
};

/* Sets *next to the first seq of the first segment after the one starting at `after`.
 * 1 found, 0 none, -1 on error. Listing (rather than naming seg-<expected>) steps over empty
 * segments and finds the one after a gap. */
static int s_next_segment(const char *dir, uint64_t after, uint64_t *next)
{
    uint64_t *firsts;
    size_t n;
    if (s_list_segments(dir, &firsts, &n) != 0)
        return -1;
    size_t i = 0;
    while (i < n && firsts[i] <= after)
        i++;
    int found = i < n;
    if (found)
        *next = firsts[i];
    free(firsts);
    if (found && *next - after > S_MAX_STEP) { /* a damaged name (s_check_steps) */
        errno = EUCLEAN;
        return -1;
    }
    return found;
}

/* Makes fd, the segment starting at first, the current one, read from its start. */
static void s_reader_switch(vem_spool_reader_t *self, int fd, uint64_t first)
{
    if (self->fd >= 0)
        close(self->fd);
    self->fd = fd;
    self->seg_first = first;
    self->offset = 0;
}

/* Fills *rec with the report of lost seqs first .. first + lost - 1 and the damaged bytes
 * from the read position up to end (at most S_DAMAGED_MAX of them). */
static void s_reader_report(vem_spool_reader_t *self, vem_spool_rec_t *rec, uint64_t first,
                            uint32_t lost, uint64_t end)
{
    uint64_t left = end > self->offset ? end - self->offset : 0;
    size_t len = left < S_DAMAGED_MAX ? (size_t)left : S_DAMAGED_MAX;
    if (len > self->cap) {
        uint8_t *grown = realloc(self->buf, len);
        if (!grown)
            abort();
        self->buf = grown;
        self->cap = len;
    }
    ssize_t n = len ? pread(self->fd, self->buf, len, (off_t)self->offset) : 0;
    *rec = (vem_spool_rec_t){.seq = first,
                             .lost = lost,
                             .received_us = self->last_us,
                             .kind = VEM_SPOOL_KIND_QUARANTINE,
                             .meta = (const uint8_t *)VEM_SPOOL_DAMAGED_META,
                             .meta_len = sizeof VEM_SPOOL_DAMAGED_META - 1,
                             .data = self->buf,
                             .data_len = n > 0 ? (uint32_t)n : 0};
}

/* At a position without an intact record `expected`: finds where reading goes on, in this
 * segment or a later one, and moves there. Returns DAMAGED with *rec filled when seqs at or
 * above `from` were lost on the way, RECORD when it moved without losing any (read again),
 * END when the next intact record is beyond upto or nothing intact follows (yet), ERROR. A
 * report covers at most UINT32_MAX seqs: a larger gap moves `expected` only, and the next
 * call reports the rest. */
static vem_spool_read_t s_reader_skip(vem_spool_reader_t *self, uint64_t upto, vem_spool_rec_t *rec)
{
    struct stat st;
    if (fstat(self->fd, &st) != 0)
        return VEM_SPOOL_READ_ERROR;
    uint64_t end = (uint64_t)st.st_size, at = 0, seq = 0;
    uint64_t first = self->expected > self->from ? self->expected : self->from;
    int found = self->offset < end ? s_scan(self->fd, self->offset, end, self->expected, &self->buf,
                                            &self->cap, &at, &seq)
                                   : 0;
    if (found < 0)
        return VEM_SPOOL_READ_ERROR;
    if (found) { /* an intact record further on in this segment */
        if (seq <= first) {
            self->offset = at;
            self->expected = seq;
            return VEM_SPOOL_READ_RECORD;
        }
        if (seq > upto)
            return VEM_SPOOL_READ_END; /* the loss is told with the record after it: not yet */
        if (seq - first > UINT32_MAX) {
            s_reader_report(self, rec, first, UINT32_MAX, at);
            self->expected = first + UINT32_MAX;
            return VEM_SPOOL_READ_DAMAGED;
        }
        s_reader_report(self, rec, first, (uint32_t)(seq - first), at);
        self->offset = at;
        self->expected = seq;
        return VEM_SPOOL_READ_DAMAGED;
    }
    /* Nothing intact in the rest of this segment: reading goes on in the next one. */
    uint64_t next;
    int fd;
    for (;;) {
        int rc = s_next_segment(self->dir, self->seg_first, &next);
        if (rc <= 0)
            return rc < 0 ? VEM_SPOOL_READ_ERROR : VEM_SPOOL_READ_END;
        if (next > first && next - 1 > upto)
            return VEM_SPOOL_READ_END; /* its records are beyond upto: not yet */
        char path[S_PATH + 32];
        s_segment_path(path, sizeof path, self->dir, next);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
            break;
        if (errno != ENOENT)
            return VEM_SPOOL_READ_ERROR;
        /* trimmed since the listing: list again */
    }
    uint64_t holds;
    int misnamed = s_misnamed(fd, next, &self->buf, &self->cap, &holds);
    if (misnamed != 0) { /* misnamed: an error, rather than its records reported lost */
        int saved = misnamed > 0 ? EUCLEAN : errno;
        close(fd);
        errno = saved;
        return VEM_SPOOL_READ_ERROR;
    }
    if (next <= first) {
        s_reader_switch(self, fd, next);
        if (next > self->expected)
            self->expected = next;
        return VEM_SPOOL_READ_RECORD;
    }
    if (next - first > UINT32_MAX) {
        close(fd);
        s_reader_report(self, rec, first, UINT32_MAX, end);
        self->expected = first + UINT32_MAX;
        return VEM_SPOOL_READ_DAMAGED;
    }
    s_reader_report(self, rec, first, (uint32_t)(next - first), end);
    s_reader_switch(self, fd, next); /* rec->data stays valid: it is in self->buf */
    self->expected = next;
    return VEM_SPOOL_READ_DAMAGED;
}

vem_spool_reader_t *vem_spool_reader_new(const char *dir, uint64_t from, char *err, size_t errlen)
{
    vem_spool_reader_t *self = calloc(1, sizeof *self);
    if (!self)
        abort();
    self->fd = -1;
    self->from = from;
    uint64_t *firsts = NULL;
    size_t n = 0;
    int cause = EUCLEAN; /* errno on failure */
    if (snprintf(self->dir, sizeof self->dir, "%s", dir) >= (int)sizeof self->dir) {
        cause = ENAMETOOLONG;
        snprintf(err, errlen, "spool %s: path too long", dir);
        goto fail;
    }
    int listed = s_list_segments(dir, &firsts, &n);
    if (listed != 0 || n == 0) {
        cause = listed ? errno : ENOENT;
        snprintf(err, errlen, "spool %s: %s", dir, listed ? strerror(cause) : "no segments");
        goto fail;
    }
    if (s_check_steps(dir, firsts, n, err, errlen) != 0)
        goto fail;
    size_t start = 0; /* the last segment starting at or before from */
    while (start + 1 < n && firsts[start + 1] <= from)
        start++;
    char path[S_PATH + 32];
    s_segment_path(path, sizeof path, dir, firsts[start]);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cause = errno;
        snprintf(err, errlen, "spool %s: %s", path, strerror(cause));
        goto fail;
    }
    uint64_t holds = 0;
    if (s_misnamed(fd, firsts[start], &self->buf, &self->cap, &holds) > 0) {
        s_misnamed_message(dir, firsts[start], holds, firsts, n, err, errlen);
        close(fd);
        goto fail; /* an I/O error is left to the first read, which returns it */
    }
    s_reader_switch(self, fd, firsts[start]);
    self->expected = firsts[start];
    free(firsts);
    return self;
fail:
    free(firsts);
    free(self->buf);
    free(self);
    errno = cause;
    return NULL;
}

vem_spool_read_t vem_spool_reader_next(vem_spool_reader_t *self, uint64_t upto,
                                       vem_spool_rec_t *rec)
{
    for (;;) {
        if (self->expected > upto)
            return VEM_SPOOL_READ_END;
        ssize_t size =
            s_read_record(self->fd, self->offset, self->expected, &self->buf, &self->cap, rec);
        if (size < 0)
            return VEM_SPOOL_READ_ERROR;
        if (size > 0) {
            self->offset += (uint64_t)size;
            self->expected++;
            self->last_us = rec->received_us;
            rec->lost = 0;
            if (rec->seq >= self->from)
                return VEM_SPOOL_READ_RECORD;
            continue;
        }
        vem_spool_read_t rc = s_reader_skip(self, upto, rec);
        if (rc != VEM_SPOOL_READ_RECORD)
            return rc;
    }
}

void vem_spool_reader_destroy(vem_spool_reader_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    if ((*self_p)->fd >= 0)
        close((*self_p)->fd);
    free((*self_p)->buf);
    free(*self_p);
    *self_p = NULL;
}

/* ---- cursors --------------------------------------------------------------------------- */

struct vem_spool_cursor {
    char path[S_PATH];
    char tmp[S_PATH];
    char dir[S_PATH];
    uint64_t seq;
};

/* A cursor file as vem_spool_cursor_commit writes it: 1 to 20 digits, then an optional
 * newline, nothing else. Anything more is damage, which must not be read as a seq: "-1" read
 * as a number (scanf's way) would put the cursor past every record, so the consumer would
 * skip them and the spool trim them. 0 with *seq, -1. */
static int s_parse_seq(const char *text, size_t len, uint64_t *seq)
{
    if (len > 0 && text[len - 1] == '\n')
        len--;
    return s_parse_digits(text, len, seq) ? 0 : -1;
}

vem_spool_cursor_t *vem_spool_cursor_open(const char *dir, const char *name, char *err,
                                          size_t errlen)
{
    vem_spool_cursor_t *self = calloc(1, sizeof *self);
    if (!self)
        abort();
    snprintf(self->dir, sizeof self->dir, "%s", dir);
    if (snprintf(self->path, sizeof self->path, "%s/cursor.%s", dir, name) >=
            (int)sizeof self->path ||
        snprintf(self->tmp, sizeof self->tmp, "%s/cursor.%s.tmp", dir, name) >=
            (int)sizeof self->tmp) {
        snprintf(err, errlen, "spool %s: cursor path too long", dir);
        free(self);
        return NULL;
    }
    FILE *f = fopen(self->path, "r");
    if (f) {
        char text[32];
        size_t len = fread(text, 1, sizeof text, f);
        fclose(f);
        if (s_parse_seq(text, len, &self->seq) != 0) {
            snprintf(err, errlen, "spool cursor %s: unreadable (not a decimal seq and a newline)",
                     self->path);
            free(self);
            return NULL;
        }
    } else if (errno != ENOENT) {
        snprintf(err, errlen, "spool cursor %s: %s", self->path, strerror(errno));
        free(self);
        return NULL;
    }
    return self;
}

uint64_t vem_spool_cursor_get(const vem_spool_cursor_t *self)
{
    return self->seq;
}

int vem_spool_cursor_commit(vem_spool_cursor_t *self, uint64_t seq)
{
    if (seq <= self->seq)
        return 0;
    char text[32];
    int len = snprintf(text, sizeof text, "%" PRIu64 "\n", seq);
    if (vem_fileio_replace(self->dir, self->tmp, self->path, (const uint8_t *)text, (size_t)len) !=
        0)
        return -1;
    self->seq = seq;
    return 0;
}

void vem_spool_cursor_destroy(vem_spool_cursor_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

/* ---- inspection ------------------------------------------------------------------------ */

static int s_cmp_consumer(const void *a, const void *b)
{
    return strcmp(((const vem_spool_consumer_info_t *)a)->name,
                  ((const vem_spool_consumer_info_t *)b)->name);
}

/* Reads the cursor files of dir into out->consumers. */
static int s_inspect_cursors(const char *dir, vem_spool_info_t *out, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "spool %s: %s", dir, strerror(errno));
        return -1;
    }
    size_t cap = 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        const char *name = e->d_name + strlen("cursor.");
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "cursor.", strlen("cursor.")) != 0 || !*name ||
            (len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0) ||
            strlen(name) >= sizeof out->consumers->name)
            continue;
        vem_spool_cursor_t *cursor = vem_spool_cursor_open(dir, name, err, errlen);
        if (!cursor) {
            rc = -1;
            break;
        }
        if (out->n_consumers == cap) {
            cap = cap ? cap * 2 : 4;
            out->consumers = realloc(out->consumers, cap * sizeof *out->consumers);
            if (!out->consumers)
                abort();
        }
        vem_spool_consumer_info_t *c = &out->consumers[out->n_consumers++];
        snprintf(c->name, sizeof c->name, "%s", name);
        c->seq = vem_spool_cursor_get(cursor);
        vem_spool_cursor_destroy(&cursor);
    }
    closedir(d);
    if (out->n_consumers > 1)
        qsort(out->consumers, out->n_consumers, sizeof *out->consumers, s_cmp_consumer);
    return rc;
}

/* Reads from seq to the end; *seq_out and *us_out get the first (first) or the last intact
 * record met. 1 found, 0 none, -1 with errno. */
static int s_inspect_read(const char *dir, uint64_t seq, bool first, uint64_t *seq_out,
                          int64_t *us_out)
{
    char err[S_PATH + 64];
    vem_spool_reader_t *reader = vem_spool_reader_new(dir, seq, err, sizeof err);
    if (!reader)
        return -1;
    int found = 0;
    vem_spool_rec_t rec;
    vem_spool_read_t rc;
    while ((rc = vem_spool_reader_next(reader, UINT64_MAX, &rec)) != VEM_SPOOL_READ_END) {
        if (rc == VEM_SPOOL_READ_ERROR) {
            found = -1;
            break;
        }
        if (rc == VEM_SPOOL_READ_RECORD) {
            found = 1;
            *seq_out = rec.seq;
            *us_out = rec.received_us;
            if (first)
                break;
        }
    }
    int saved = errno;
    vem_spool_reader_destroy(&reader);
    errno = saved;
    return found;
}

int vem_spool_inspect(const char *dir, vem_spool_info_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    uint64_t *firsts = NULL;
    size_t n = 0;
    int listed = s_list_segments(dir, &firsts, &n);
    if (listed != 0 || n == 0) {
        snprintf(err, errlen, "spool %s: %s", dir, listed ? strerror(errno) : "no segments");
        free(firsts);
        return -1;
    }
    if (s_check_steps(dir, firsts, n, err, errlen) != 0 ||
        s_check_names(dir, firsts, n, err, errlen) != 0) {
        free(firsts);
        return -1;
    }
    out->segments = calloc(n, sizeof *out->segments);
    if (!out->segments)
        abort();
    out->n_segments = n;
    for (size_t i = 0; i < n; i++) {
        char path[S_PATH + 32];
        struct stat st;
        s_segment_path(path, sizeof path, dir, firsts[i]);
        out->segments[i].first_seq = firsts[i];
        out->segments[i].bytes = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
        out->bytes += out->segments[i].bytes;
    }
    /* The last record is in the last segment that holds one; read from the end backwards. */
    int found = 0;
    out->last_seq = firsts[n - 1] - 1;
    for (size_t i = n; i-- > 0 && found == 0;)
        found = s_inspect_read(dir, firsts[i], false, &out->last_seq, &out->last_us);
    if (found > 0)
        found = s_inspect_read(dir, 1, true, &out->first_seq, &out->first_us);
    free(firsts);
    if (found < 0) {
        snprintf(err, errlen, "spool %s: reading: %s", dir, strerror(errno));
        vem_spool_info_free(out);
        return -1;
    }
    if (found == 0) { /* no record at all */
        out->first_seq = out->last_seq + 1;
        out->first_us = out->last_us = 0;
    }
    if (s_inspect_cursors(dir, out, err, errlen) != 0) {
        vem_spool_info_free(out);
        return -1;
    }
    return 0;
}

void vem_spool_info_free(vem_spool_info_t *info)
{
    free(info->segments);
    free(info->consumers);
    memset(info, 0, sizeof *info);
}

int vem_spool_received_us(const char *dir, uint64_t seq, int64_t *us)
{
    uint64_t found_seq;
    int found = s_inspect_read(dir, seq, true, &found_seq, us);
    if (found == 0)
        errno = ENOENT;
    return found > 0 ? 0 : -1;
}
