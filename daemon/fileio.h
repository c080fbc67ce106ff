/* fileio — whole-buffer positional reads and writes, for the on-disk modules (spool, spill,
 * checkpoint), and the directory fsync that makes their renames durable.
 *
 * pread/pwrite may move fewer bytes than asked and may be interrupted; these loop until all
 * bytes moved or a real error. Pure wrappers: no state, any thread. */
#ifndef VEM_FILEIO_H
#define VEM_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* Writes len bytes at offset: 0, or -1 with errno (EIO for a write that moved nothing). */
int vem_fileio_pwrite_all(int fd, const uint8_t *p, size_t len, uint64_t offset);

/* Reads len bytes at offset: 0, or -1 with errno (EIO when the file ends first). */
int vem_fileio_pread_all(int fd, uint8_t *p, size_t len, uint64_t offset);

/* fsync of a directory, so a rename or a new file in it is durable: 0, or -1 with errno. */
int vem_fileio_fsync_dir(const char *dir);

/* Replaces the file path in dir by len bytes, durably: written to tmp, fdatasynced, renamed
 * over path, dir fsynced. 0, or -1 with errno (path then holds its old bytes or the new). */
int vem_fileio_replace(const char *dir, const char *tmp, const char *path, const uint8_t *p,
                       size_t len);

#endif
