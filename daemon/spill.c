/* spill — a sink's on-disk FIFO of messages; see spill.h. */
#include "spill.h"

#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct vem_spill {
    char *path;
    int fd;
    uint64_t max_bytes;
    uint64_t read_off,
        write_off; /* the front record starts at read_off; the file ends at write_off */
    uint64_t count;
};

vem_spill_t *vem_spill_open(const char *path, uint64_t max_bytes, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        snprintf(err, errlen, "spill %s: %s", path, strerror(errno));
        return NULL;
    }
    vem_spill_t *self = calloc(1, sizeof *self);
    if (!self || !(self->path = strdup(path)))
        abort();
    self->fd = fd;
    self->max_bytes = max_bytes;
    return self;
}

void vem_spill_destroy(vem_spill_t **self_p)
{
    vem_spill_t *self = *self_p;
    if (!self)
        return;
    close(self->fd);
    unlink(self->path);
    free(self->path);
    free(self);
    *self_p = NULL;
}

int vem_spill_push(vem_spill_t *self, const void *data, size_t len)
{
    if (len == 0 || len > UINT32_MAX ||
        self->write_off - self->read_off + 4 + len > self->max_bytes) {
        errno = len == 0 ? EINVAL : ENOSPC;
        return -1;
    }
    uint32_t n = (uint32_t)len;
    if (vem_fileio_pwrite_all(self->fd, (const uint8_t *)&n, 4, self->write_off) != 0 ||
        vem_fileio_pwrite_all(self->fd, data, len, self->write_off + 4) != 0)
        return -1; /* what was written of it lies past write_off: the next push overwrites it */
    self->write_off += 4 + len;
    self->count++;
    return 0;
}

size_t vem_spill_peek(const vem_spill_t *self)
{
    if (self->count == 0)
        return 0;
    uint32_t n;
    if (vem_fileio_pread_all(self->fd, (uint8_t *)&n, 4, self->read_off) != 0)
        return 0;
    return n;
}

int vem_spill_pop(vem_spill_t *self, void *buf)
{
    size_t len = vem_spill_peek(self);
    if (len == 0) {
        errno = self->count ? EIO : ENOENT;
        return -1;
    }
    if (vem_fileio_pread_all(self->fd, buf, len, self->read_off + 4) != 0)
        return -1;
    self->read_off += 4 + len;
    if (--self->count == 0) {
        /* caught up: start the file again, so it never grows past what is waiting */
        self->read_off = self->write_off = 0;
        if (ftruncate(self->fd, 0) != 0)
            return 0; /* harmless: the next push overwrites from offset 0 */
    }
    return 0;
}

uint64_t vem_spill_count(const vem_spill_t *self)
{
    return self->count;
}

uint64_t vem_spill_bytes(const vem_spill_t *self)
{
    return self->write_off - self->read_off;
}
