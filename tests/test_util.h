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

/* A fixture file of the CKFIX001 format (tests/fixtures/make_grad_fixture.py): the 8 bytes
 * "CKFIX001", then records of name length (u32), name, type ('i' int32, 'f' float32, 'd'
 * float64), count (u32) and the values, little endian. */
typedef struct {
    unsigned char *data;
    size_t size;
} TestFixture;

/* Reads the fixture at path; fails the test unless it is one. Free data when done. */
TestFixture test_fixture_open(const char *path);

/* Returns a pointer to the values of record name (unaligned: copy out) with its type and
 * count, or NULL when there is none; fails the test when a record runs past the file. */
const unsigned char *test_fixture_lookup(const TestFixture *f, const char *name, char *type,
                                         size_t *count);

/* The values of record name; fails the test unless it exists with this type and exactly
 * count values. */
const unsigned char *test_fixture_get(const TestFixture *f, const char *name, char type,
                                      size_t count);

/* Copies record name into out (NULL: only count it); fails the test unless it exists with
 * this type and `expect` values (0: any count). Returns its count. */
size_t test_fixture_read(const TestFixture *f, const char *name, char type, void *out,
                         size_t expect);

/* Removes path and everything below it, as `rm -rf` does (an absent path is fine); returns 0,
 * or -1 when something could not be removed. */
int test_remove_dir(const char *path);

/* Returns a fresh temporary directory (malloc'd path) below $TMPDIR or /tmp. */
char *test_temp_dir(void);

/* Runs a shell command and returns its exit status (or -1); its stdout and stderr are
 * captured into malloc'd strings when the pointers are non-NULL. */
int test_run(const char *cmd, char **out, char **errout);

#endif
