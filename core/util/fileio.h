/* fileio.h — whole-file reads and atomic writes, shared by every format writer. */
#ifndef CK_FILEIO_H
#define CK_FILEIO_H

#include <stddef.h>

#include "util/ck_error.h"

/* Reads the file at path into a malloc'd NUL-terminated buffer (caller frees; *size gets
 * its length when non-NULL); refuses files larger than max_bytes. Returns NULL on failure. */
char *fileio_read_text(const char *path, size_t max_bytes, size_t *size, CkError *err);

/* Writes size bytes to path atomically: a temporary file beside it, fsync, rename over path,
 * then fsync of the directory, so a reader sees the old file or the complete new one, never a
 * part, and the rename survives a crash. */
int fileio_write_atomic(const char *path, const void *data, size_t size, CkError *err);

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
