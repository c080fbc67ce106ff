/* fuzz_files — the scratch directory of a fuzz target that reads files back (fuzz_ckpt,
 * fuzz_spool): made once under /dev/shm when there is one (no disk I/O per run), emptied
 * between inputs, removed at exit. A failure to make, write or empty it aborts, naming the
 * target; it is the machine's fault, not the input's.
 *
 * Included by one translation unit each: everything here is static (inline, so that a target need not use all of it). */
#ifndef VEM_FUZZ_FILES_H
#define VEM_FUZZ_FILES_H

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char fuzz_files_root[256];
static const char *fuzz_files_target = "fuzz";

static inline void fuzz_files_fail(const char *what, const char *path)
{
    fprintf(stderr, "%s: %s %s: %s\n", fuzz_files_target, what, path, strerror(errno));
    abort();
}

/* Removes what dir holds: files, and directories that are empty (as the targets make them). */
static inline void fuzz_files_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        fuzz_files_fail("opendir", dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[700];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0 && rmdir(path) != 0)
            fuzz_files_fail("removing", path);
    }
    closedir(d);
}

/* Makes dir/name, an empty directory, and leaves its path in out. */
static inline void fuzz_files_subdir(const char *name, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/%s", fuzz_files_root, name);
    if (mkdir(out, 0700) != 0)
        fuzz_files_fail("mkdir", out);
}

/* Empties the root one level down (the targets' subdirectories hold only files), then
 * removes it. */
static inline void fuzz_files_remove_root(void)
{
    if (!fuzz_files_root[0])
        return;
    DIR *d = opendir(fuzz_files_root);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[700];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", fuzz_files_root, e->d_name);
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
            lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            fuzz_files_empty(path);
    }
    if (d)
        closedir(d);
    fuzz_files_empty(fuzz_files_root);
    rmdir(fuzz_files_root);
}

/* Makes the root, vem-<target>.XXXXXX, and has it removed at exit. */
static inline void fuzz_files_make_root(const char *target)
{
    fuzz_files_target = target;
    const char *base = getenv("TMPDIR");
    if (access("/dev/shm", W_OK) == 0)
        base = "/dev/shm";
    snprintf(fuzz_files_root, sizeof fuzz_files_root, "%s/vem-%s.XXXXXX", base ? base : "/tmp",
             target);
    if (!mkdtemp(fuzz_files_root))
        fuzz_files_fail("mkdtemp", fuzz_files_root);
    atexit(fuzz_files_remove_root);
}

static inline void fuzz_files_write(const char *dir, const char *name, const uint8_t *p, size_t len)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0)
        fuzz_files_fail("writing", path);
}

#endif
