/* test_util.h — helpers shared by the CMocka tests. */
#ifndef CK_TEST_UTIL_H
#define CK_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* Returns a malloc'd path to `rel` inside ../shared, or NULL when the shared material is
 * absent; then it has printed why and counted a missing reference (test_exit_code), and the
 * caller skips with skip(). */
char *test_shared_path(const char *rel);

/* Prints "SKIPPED: what" and counts a test that cannot run because its outside reference
 * (../shared, python3-torch, Chromium) is missing; the caller then calls skip(). */
void test_missing_reference(const char *what);

/* The test program's exit status from cmocka's failure count: failures make it 1; none but a
 * missing reference makes it 77, ctest's skip code (SKIP_RETURN_CODE), so that a test whose
 * reference is absent is reported skipped, never passed. */
int test_exit_code(int failures);

/* Fails the test, printing both values and the tolerance, unless |actual - expected| <= tol
 * (NaN never passes). */
#define assert_close(actual, expected, tol)                                                        \
    test_assert_close((double)(actual), (double)(expected), (double)(tol), #actual, #expected,     \
                      __FILE__, __LINE__)
void test_assert_close(double actual, double expected, double tol, const char *actual_text,
                       const char *expected_text, const char *file, int line);

/* Fails the test unless the JSON texts a and b hold the same values: the same keys, arrays
 * and strings, and numbers within tol of each other; names the first path that differs. */
void test_assert_json_close(const char *a, const char *b, double tol);

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
