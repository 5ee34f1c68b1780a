/* test_util.c — file and process helpers for the tests. */
#include "test_util.h"

#include "blas_env.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char *test_shared_path(const char *rel) {
    size_t n = strlen(CUTKIT_SHARED_DIR) + strlen(rel) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", CUTKIT_SHARED_DIR, rel);
    if (access(p, R_OK) != 0) {
        fprintf(stderr, "skipping: %s is absent (the shared/ material is not beside the repo)\n",
                p);
        free(p);
        return NULL;
    }
    return p;
}

char *test_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (size) *size = (size_t)n;
    }
    return buf;
}

int test_write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, size, f);
    return (fclose(f) == 0 && w == size) ? 0 : -1;
}

char *test_temp_dir(void) {
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    size_t n = strlen(base) + 32;
    char *p = malloc(n);
    snprintf(p, n, "%s/cutkit-test-XXXXXX", base);
    if (!mkdtemp(p)) {
        free(p);
        return NULL;
    }
    return p;
}

static char *slurp_stream(FILE *f) {
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += r;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    return buf;
}

int test_run(const char *cmd, char **out, char **errout) {
    char errpath[] = "/tmp/cutkit-test-stderr-XXXXXX";
    int fd = mkstemp(errpath);
    if (fd < 0) return -1;
    close(fd);
    size_t n = strlen(cmd) + sizeof errpath + 16;
    char *full = malloc(n);
    snprintf(full, n, "%s 2>%s", cmd, errpath);
    FILE *p = popen(full, "r");
    free(full);
    if (!p) return -1;
    char *o = slurp_stream(p);
    int status = pclose(p);
    if (out)
        *out = o;
    else
        free(o);
    if (errout) *errout = test_read_file(errpath, NULL);
    unlink(errpath);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Every test program runs with the OpenBLAS kernels that cutkit itself would use (see
 * model/blas_env.h): before main, re-execute once with OPENBLAS_CORETYPE set. */
__attribute__((constructor)) static void test_blas_env(void) {
    static char buf[8192];
    static char *argv[64];
    FILE *f = fopen("/proc/self/cmdline", "rb");
    if (!f) return;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    int argc = 0;
    for (size_t i = 0; i < n && argc < 63; i += strlen(buf + i) + 1) argv[argc++] = buf + i;
    argv[argc] = NULL;
    if (argc > 0) blas_env_ensure(argv);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int test_remove_dir(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -1;
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

TestFixture test_fixture_open(const char *path) {
    TestFixture f;
    f.data = (unsigned char *)test_read_file(path, &f.size);
    if (!f.data) fail_msg("cannot read the fixture %s", path);
    assert_true(f.size > 8 && memcmp(f.data, "CKFIX001", 8) == 0);
    return f;
}

const unsigned char *test_fixture_lookup(const TestFixture *f, const char *name, char *type,
                                         size_t *count) {
    size_t pos = 8;
    while (pos + 4 <= f->size) {
        uint32_t len, n;
        memcpy(&len, f->data + pos, 4);
        assert_true(pos + 4 + (size_t)len + 5 <= f->size);
        const char *rec = (const char *)f->data + pos + 4;
        const char t = rec[len];
        memcpy(&n, rec + len + 1, 4);
        const size_t body = pos + 4 + (size_t)len + 5, width = t == 'd' ? 8 : 4;
        assert_true(body + (size_t)n * width <= f->size);
        if (len == strlen(name) && memcmp(rec, name, len) == 0) {
            *type = t;
            *count = n;
            return f->data + body;
        }
        pos = body + (size_t)n * width;
    }
    return NULL;
}

const unsigned char *test_fixture_get(const TestFixture *f, const char *name, char type,
                                      size_t count) {
    char t = 0;
    size_t n = 0;
    const unsigned char *p = test_fixture_lookup(f, name, &t, &n);
    if (!p) fail_msg("fixture record %s is missing", name);
    assert_int_equal(t, type);
    assert_int_equal(n, count);
    return p;
}

size_t test_fixture_read(const TestFixture *f, const char *name, char type, void *out,
                         size_t expect) {
    char t = 0;
    size_t n = 0;
    const unsigned char *p = test_fixture_lookup(f, name, &t, &n);
    if (!p) fail_msg("fixture record %s is missing", name);
    assert_int_equal(t, type);
    if (expect) assert_int_equal(n, expect);
    if (out) memcpy(out, p, n * (type == 'd' ? 8 : 4));
    return n;
}
