/* test_util.h — helpers shared by the CMocka tests. */
#ifndef CK_TEST_UTIL_H
#define CK_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* Returns a malloc'd path to `rel` inside ../shared, or NULL (after printing why) when the
 * shared material is absent, so the caller can skip(). */
char *test_shared_path(const char *rel);

/* Reads a whole file into a malloc'd buffer (NUL-terminated; *size excludes the NUL), or
 * returns NULL. */
char *test_read_file(const char *path, size_t *size);

/* Writes size bytes to path; returns 0 on success. */
int test_write_file(const char *path, const void *data, size_t size);

/* Removes path and everything below it, as `rm -rf` does (an absent path is fine); returns 0,
 * or -1 when something could not be removed. */
int test_remove_dir(const char *path);

/* Returns a fresh temporary directory (malloc'd path) below $TMPDIR or /tmp. */
char *test_temp_dir(void);

/* Runs a shell command and returns its exit status (or -1); its stdout and stderr are
 * captured into malloc'd strings when the pointers are non-NULL. */
int test_run(const char *cmd, char **out, char **errout);

#endif
