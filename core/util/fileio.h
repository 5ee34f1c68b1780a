/* fileio.h — whole-file reads, and the one path by which cutkit writes a file: a temporary
 * file beside the target, written, fsync'd, renamed over the target, then the directory
 * fsync'd, so that a reader (or a crash) sees the old file or the complete new one. */
#ifndef CK_FILEIO_H
#define CK_FILEIO_H

#include <stddef.h>
#include <stdio.h>

#include "util/ck_error.h"

/* Reads the file at path into a malloc'd NUL-terminated buffer (caller frees; *size gets
 * its length when non-NULL); refuses files larger than max_bytes. Returns NULL on failure. */
char *fileio_read_text(const char *path, size_t max_bytes, size_t *size, CkError *err);

/* A file being written atomically: write through `f` (stdio), then atomic_file_commit or
 * atomic_file_abort. The temporary file is "<path>.tmp-<pid>". */
typedef struct {
    FILE *f;    /* the temporary file, open for writing ("wb") */
    char *path; /* the target (owned) */
    char *tmp;  /* the temporary name beside it (owned) */
} AtomicFile;

/* Creates the temporary file beside path (whose directory must exist); returns 0, or -1 with
 * err naming it. On success the caller must end with atomic_file_commit or _abort. */
int atomic_file_open(AtomicFile *a, const char *path, CkError *err);

/* Flushes, fsyncs and closes the temporary file, renames it over the target and fsyncs the
 * directory. Any earlier write error (ferror), a full disk included, fails it, naming the
 * target, and removes the temporary file. Releases a in every case. */
int atomic_file_commit(AtomicFile *a, CkError *err);

/* Closes and removes the temporary file and releases a; the target is untouched. Safe on a
 * zeroed or already released AtomicFile. */
void atomic_file_abort(AtomicFile *a);

/* Writes size bytes to path through an AtomicFile (the whole-buffer case). */
int fileio_write_atomic(const char *path, const void *data, size_t size, CkError *err);

/* Removes "<path>.tmp-<pid>" files beside path left by processes that no longer run (a
 * killed writer's leftovers); the current process's own are kept. */
void fileio_remove_stale_temps(const char *path);

/* fsyncs the directory dir, so that renames into it survive a crash; returns 0, or -1 with
 * errno set. */
int fileio_sync_dir(const char *dir);

/* fsyncs the directory that holds path (see fileio_sync_dir). */
int fileio_sync_parent(const char *path);

/* Creates the directory path and its missing parents (mkdir -p); fails naming the part that
 * cannot be created, or when path exists and is not a directory. */
int fileio_make_dirs(const char *path, CkError *err);

/* Writes dir + "/" + name into buf (capacity size); returns 0, or -1 when it does not fit
 * (buf then holds a truncated path that no caller may use). */
int fileio_path(char *buf, size_t size, const char *dir, const char *name);

#endif
