/* spool — append-only segmented input log with per-consumer cursors; see spool.h.
 *
 * Layout of the directory:
 *   seg-<first seq, 20 digits>.log   records in seq order; the name says where it starts
 *   cursor.<name>                    one decimal seq per consumer, replaced atomically
 *
 * A record is a 28-byte little-endian header followed by meta and data:
 *   u32 crc32 (zlib) of everything after this field | u32 data_len | u64 seq |
 *   i64 received_us | u16 kind | u16 meta_len
 * Only the last segment can be torn by a crash: on open it is scanned and cut after the last
 * record whose CRC and seq check out. Sequence numbers continue across segments, so a reader
 * that reaches the end of segment k finds its successor by name (seg-<next seq>.log) without
 * listing the directory.
 *
 * Thread: the owner of vem_spool_t (ingest) only; readers and cursors are separate objects. */
#include "spool.h"

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
#define S_MAX_DATA       (16u << 20) /* a record larger than this is corruption */
#define S_WBUF           (256u << 10)
#define S_PATH           4096
#define S_SEGMENT_FORMAT "%s/seg-%020" PRIu64 ".log"

struct vem_spool {
    char dir[S_PATH];
    vem_spool_opts_t opts;
    int fd;             /* active (last) segment */
    uint64_t seg_first; /* first seq of the active segment */
    uint64_t seg_bytes; /* its size including buffered bytes */
    uint64_t *firsts;   /* first seq of every segment, ascending; last is the active one */
    size_t n_segs, cap_segs;
    uint64_t next_seq;
    uint64_t total_bytes;
    uint8_t *wbuf;
    size_t wlen;
};

struct vem_spool_reader {
    char dir[S_PATH];
    int fd;
    uint64_t offset;   /* read position in the current segment */
    uint64_t expected; /* seq of the next record to return */
    uint64_t from;
    uint8_t *buf;
    size_t cap;
};

struct vem_spool_cursor {
    char path[S_PATH];
    char tmp[S_PATH];
    char dir[S_PATH];
    uint64_t seq;
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

static int s_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists the segments of dir into a malloc'd ascending array. */
static int s_list_segments(const char *dir, uint64_t **out, size_t *n_out, size_t *cap_out)
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
        char tail[8];
        if (sscanf(e->d_name, "seg-%20" SCNu64 ".%4s", &first, tail) != 2 ||
            strcmp(tail, "log") != 0 || first == 0)
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
    *cap_out = cap;
    return 0;
}

/* Reads one record at offset of fd into *buf (grown as needed). Returns the record size,
 * 0 when no complete, valid record with seq == expected starts there. */
static size_t s_read_record(int fd, uint64_t offset, uint64_t expected, uint8_t **buf, size_t *cap,
                            vem_spool_rec_t *rec)
{
    uint8_t hdr[S_HEADER];
    if (pread(fd, hdr, S_HEADER, (off_t)offset) != S_HEADER)
        return 0;
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
    if (body && pread(fd, *buf + S_HEADER, body, (off_t)(offset + S_HEADER)) != (ssize_t)body)
        return 0;
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
    return size;
}

static int s_open_segment(vem_spool_t *self, uint64_t first, bool create)
{
    char path[S_PATH + 32];
    snprintf(path, sizeof path, S_SEGMENT_FORMAT, self->dir, first);
    int flags = O_RDWR | O_APPEND | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0);
    self->fd = open(path, flags, 0640);
    if (self->fd < 0)
        return -1;
    if (create && self->opts.fsync && s_fsync_dir(self->dir) != 0)
        return -1;
    return 0;
}

/* Scans the active segment, cuts a torn tail and finds the next seq. */
static int s_recover_tail(vem_spool_t *self, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(self->fd, &st) != 0) {
        snprintf(err, errlen, "spool %s: %s", self->dir, strerror(errno));
        return -1;
    }
    uint8_t *buf = NULL;
    size_t cap = 0, size;
    uint64_t offset = 0, seq = self->seg_first;
    while ((size = s_read_record(self->fd, offset, seq, &buf, &cap, NULL)) > 0) {
        offset += size;
        seq++;
    }
    free(buf);
    if (offset < (uint64_t)st.st_size && ftruncate(self->fd, (off_t)offset) != 0) {
        snprintf(err, errlen, "spool %s: cutting torn tail: %s", self->dir, strerror(errno));
        return -1;
    }
    self->total_bytes -= (uint64_t)st.st_size - offset;
    self->seg_bytes = offset;
    self->next_seq = seq;
    return 0;
}

vem_spool_t *vem_spool_open(const char *dir, const vem_spool_opts_t *opts, char *err, size_t errlen)
{
    vem_spool_t *self = calloc(1, sizeof *self);
    if (!self)
        abort();
    self->fd = -1;
    self->opts = *opts;
    if (snprintf(self->dir, sizeof self->dir, "%s", dir) >= (int)sizeof self->dir) {
        snprintf(err, errlen, "spool %s: path too long", dir);
        goto fail;
    }
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "spool %s: %s", dir, strerror(errno));
        goto fail;
    }
    if (s_list_segments(dir, &self->firsts, &self->n_segs, &self->cap_segs) != 0) {
        snprintf(err, errlen, "spool %s: %s", dir, strerror(errno));
        goto fail;
    }
    for (size_t i = 0; i < self->n_segs; i++) {
        char path[S_PATH + 32];
        struct stat st;
        snprintf(path, sizeof path, S_SEGMENT_FORMAT, dir, self->firsts[i]);
        if (stat(path, &st) == 0)
            self->total_bytes += (uint64_t)st.st_size;
    }
    if (self->n_segs == 0) {
        self->firsts[self->n_segs++] = 1;
        if (s_open_segment(self, 1, true) != 0) {
            snprintf(err, errlen, "spool %s: creating first segment: %s", dir, strerror(errno));
            goto fail;
        }
    } else if (s_open_segment(self, self->firsts[self->n_segs - 1], false) != 0) {
        snprintf(err, errlen, "spool %s: %s", dir, strerror(errno));
        goto fail;
    }
    self->seg_first = self->firsts[self->n_segs - 1];
    if (s_recover_tail(self, err, errlen) != 0)
        goto fail;
    self->wbuf = malloc(S_WBUF);
    if (!self->wbuf)
        abort();
    return self;
fail:
    if (self->fd >= 0)
        close(self->fd);
    free(self->firsts);
    free(self);
    return NULL;
}

static int s_write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int s_write_buffer(vem_spool_t *self)
{
    if (self->wlen == 0)
        return 0;
    if (s_write_all(self->fd, self->wbuf, self->wlen) != 0)
        return -1;
    self->wlen = 0;
    return 0;
}

int vem_spool_flush(vem_spool_t *self)
{
    if (s_write_buffer(self) != 0)
        return -1;
    if (self->opts.fsync && fdatasync(self->fd) != 0)
        return -1;
    return 0;
}

static int s_roll(vem_spool_t *self)
{
    if (vem_spool_flush(self) != 0)
        return -1;
    close(self->fd);
    self->fd = -1;
    if (self->n_segs == self->cap_segs) {
        self->cap_segs *= 2;
        self->firsts = realloc(self->firsts, self->cap_segs * sizeof *self->firsts);
        if (!self->firsts)
            abort();
    }
    if (s_open_segment(self, self->next_seq, true) != 0)
        return -1;
    self->firsts[self->n_segs++] = self->next_seq;
    self->seg_first = self->next_seq;
    self->seg_bytes = 0;
    return 0;
}

bool vem_spool_has_room(const vem_spool_t *self, size_t payload_len)
{
    return self->total_bytes + S_HEADER + payload_len <= self->opts.max_bytes;
}

int vem_spool_append(vem_spool_t *self, vem_spool_rec_t *rec)
{
    size_t size = S_HEADER + (size_t)rec->meta_len + rec->data_len;
    if (rec->data_len > S_MAX_DATA) {
        errno = EMSGSIZE;
        return -1;
    }
    if (!vem_spool_has_room(self, size - S_HEADER)) {
        errno = ENOSPC;
        return -1;
    }
    if (self->seg_bytes > 0 && self->seg_bytes + size > self->opts.segment_bytes &&
        s_roll(self) != 0)
        return -1;
    if (self->wlen + size > S_WBUF && s_write_buffer(self) != 0)
        return -1;

    uint8_t hdr[S_HEADER];
    s_put32(hdr + 4, rec->data_len);
    s_put64(hdr + 8, self->next_seq);
    s_put64(hdr + 16, (uint64_t)rec->received_us);
    hdr[24] = (uint8_t)rec->kind;
    hdr[25] = (uint8_t)(rec->kind >> 8);
    hdr[26] = (uint8_t)rec->meta_len;
    hdr[27] = (uint8_t)(rec->meta_len >> 8);
    uLong crc = crc32_z(0, hdr + 4, S_HEADER - 4);
    crc = crc32_z(crc, rec->meta, rec->meta_len);
    crc = crc32_z(crc, rec->data, rec->data_len);
    s_put32(hdr, (uint32_t)crc);

    if (size > S_WBUF) { /* larger than the buffer: straight to the file */
        if (s_write_all(self->fd, hdr, S_HEADER) != 0 ||
            s_write_all(self->fd, rec->meta, rec->meta_len) != 0 ||
            s_write_all(self->fd, rec->data, rec->data_len) != 0)
            return -1;
    } else {
        memcpy(self->wbuf + self->wlen, hdr, S_HEADER);
        if (rec->meta_len)
            memcpy(self->wbuf + self->wlen + S_HEADER, rec->meta, rec->meta_len);
        if (rec->data_len)
            memcpy(self->wbuf + self->wlen + S_HEADER + rec->meta_len, rec->data, rec->data_len);
        self->wlen += size;
    }
    rec->seq = self->next_seq++;
    self->seg_bytes += size;
    self->total_bytes += size;
    return 0;
}

int vem_spool_trim(vem_spool_t *self, uint64_t upto)
{
    size_t drop = 0;
    /* Segment i holds seqs firsts[i] .. firsts[i+1]-1; the active one is never dropped. */
    while (drop + 1 < self->n_segs && self->firsts[drop + 1] - 1 <= upto) {
        char path[S_PATH + 32];
        struct stat st;
        snprintf(path, sizeof path, S_SEGMENT_FORMAT, self->dir, self->firsts[drop]);
        if (stat(path, &st) == 0)
            self->total_bytes -= (uint64_t)st.st_size;
        if (unlink(path) != 0 && errno != ENOENT)
            return -1;
        drop++;
    }
    if (drop) {
        memmove(self->firsts, self->firsts + drop, (self->n_segs - drop) * sizeof *self->firsts);
        self->n_segs -= drop;
    }
    return 0;
}

uint64_t vem_spool_next_seq(const vem_spool_t *self)
{
    return self->next_seq;
}

uint64_t vem_spool_bytes(const vem_spool_t *self)
{
    return self->total_bytes;
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
    free(self->wbuf);
    free(self->firsts);
    free(self);
    *self_p = NULL;
}

/* ---- readers --------------------------------------------------------------------------- */

static int s_reader_open_segment(vem_spool_reader_t *self, uint64_t first)
{
    char path[S_PATH + 32];
    snprintf(path, sizeof path, S_SEGMENT_FORMAT, self->dir, first);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (self->fd >= 0)
        close(self->fd);
    self->fd = fd;
    self->offset = 0;
    self->expected = first;
    return 0;
}

vem_spool_reader_t *vem_spool_reader_new(const char *dir, uint64_t from, char *err, size_t errlen)
{
    vem_spool_reader_t *self = calloc(1, sizeof *self);
    if (!self)
        abort();
    self->fd = -1;
    self->from = from;
    snprintf(self->dir, sizeof self->dir, "%s", dir);
    uint64_t *firsts = NULL;
    size_t n = 0, cap;
    if (s_list_segments(dir, &firsts, &n, &cap) != 0 || n == 0) {
        snprintf(err, errlen, "spool %s: %s", dir, n == 0 ? "no segments" : strerror(errno));
        free(firsts);
        free(self);
        return NULL;
    }
    size_t start = 0; /* the last segment starting at or before from */
    while (start + 1 < n && firsts[start + 1] <= from)
        start++;
    int rc = s_reader_open_segment(self, firsts[start]);
    free(firsts);
    if (rc != 0) {
        snprintf(err, errlen, "spool %s: %s", dir, strerror(errno));
        free(self);
        return NULL;
    }
    return self;
}

int vem_spool_reader_next(vem_spool_reader_t *self, vem_spool_rec_t *rec)
{
    for (;;) {
        size_t size =
            s_read_record(self->fd, self->offset, self->expected, &self->buf, &self->cap, rec);
        if (size == 0) {
            /* End of this segment: its successor, if any, starts at the expected seq. */
            if (s_reader_open_segment(self, self->expected) == 0)
                continue;
            if (errno != ENOENT)
                return -1;
            /* No successor: the end of what is written, unless a later segment exists, in
             * which case records are missing or damaged in between. */
            uint64_t *firsts = NULL;
            size_t n = 0, cap;
            if (s_list_segments(self->dir, &firsts, &n, &cap) != 0)
                return -1;
            bool later = n > 0 && firsts[n - 1] > self->expected;
            free(firsts);
            if (later) {
                errno = EBADMSG;
                return -1;
            }
            return 0;
        }
        self->offset += size;
        self->expected++;
        if (rec->seq >= self->from)
            return 1;
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
        int ok = fscanf(f, "%" SCNu64, &self->seq) == 1;
        fclose(f);
        if (!ok) {
            snprintf(err, errlen, "spool cursor %s: unreadable", self->path);
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
    int fd = open(self->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    if (s_write_all(fd, (const uint8_t *)text, (size_t)len) != 0 || fdatasync(fd) != 0) {
        close(fd);
        return -1;
    }
    close(fd);
    if (rename(self->tmp, self->path) != 0 || s_fsync_dir(self->dir) != 0)
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
