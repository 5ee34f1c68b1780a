/* test_util.c — file and process helpers for the tests. */
#include "tests/test_util.h"

#include "model/blas_env.h"

#include <cjson/cJSON.h>

#include <errno.h>
#include <math.h>
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
        char what[1200];
        snprintf(what, sizeof what, "%s is absent (the shared/ material is not beside the repo)",
                 p);
        test_missing_reference(what);
        free(p);
        return NULL;
    }
    return p;
}

static int missing_references;

void test_missing_reference(const char *what) {
    fprintf(stderr, "SKIPPED: %s\n", what);
    missing_references++;
}

int test_exit_code(int failures) {
    if (failures) return 1;
    return missing_references ? 77 : 0;
}

void test_assert_close(double actual, double expected, double tol, const char *actual_text,
                       const char *expected_text, const char *file, int line) {
    double diff = fabs(actual - expected);
    if (diff <= tol) return; /* false for NaN */
    print_error("%s = %.17g is not within %g of %s = %.17g (difference %.3g)\n", actual_text,
                actual, tol, expected_text, expected, diff);
    _fail(file, line);
}

/* Compares a and b below path; returns 0 when equal within tol, else writes the first
 * differing path into where. */
static int json_close(const cJSON *a, const cJSON *b, double tol, const char *path, char *where,
                      size_t cap) {
    if (cJSON_IsNumber(a) && cJSON_IsNumber(b)) {
        if (fabs(a->valuedouble - b->valuedouble) <= tol) return 0;
        snprintf(where, cap, "%s: %.17g vs %.17g", path, a->valuedouble, b->valuedouble);
        return -1;
    }
    if ((a->type & 0xff) != (b->type & 0xff)) {
        snprintf(where, cap, "%s: different types", path);
        return -1;
    }
    if (cJSON_IsString(a)) {
        if (!strcmp(a->valuestring, b->valuestring)) return 0;
        snprintf(where, cap, "%s: \"%s\" vs \"%s\"", path, a->valuestring, b->valuestring);
        return -1;
    }
    if (cJSON_IsArray(a) || cJSON_IsObject(a)) {
        if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b)) {
            snprintf(where, cap, "%s: %d vs %d members", path, cJSON_GetArraySize(a),
                     cJSON_GetArraySize(b));
            return -1;
        }
        int i = 0;
        for (const cJSON *x = a->child, *y = b->child; x && y; x = x->next, y = y->next, i++) {
            char sub[512];
            if (cJSON_IsObject(a)) {
                if (strcmp(x->string, y->string)) {
                    snprintf(where, cap, "%s: key %s vs %s", path, x->string, y->string);
                    return -1;
                }
                snprintf(sub, sizeof sub, "%s.%s", path, x->string);
            } else {
                snprintf(sub, sizeof sub, "%s[%d]", path, i);
            }
            if (json_close(x, y, tol, sub, where, cap) != 0) return -1;
        }
    }
    return 0;
}

void test_assert_json_close(const char *a, const char *b, double tol) {
    cJSON *ja = cJSON_Parse(a), *jb = cJSON_Parse(b);
    char where[1024] = "";
    int rc = (!ja || !jb) ? -1 : json_close(ja, jb, tol, "$", where, sizeof where);
    if (!ja || !jb) snprintf(where, sizeof where, "not JSON");
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    if (rc != 0) fail_msg("JSON differs beyond %g at %s", tol, where);
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
