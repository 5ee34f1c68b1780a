/* test_safetensors.c — the safetensors reader and writer: hand-built files with known F32,
 * F16 and BF16 values, every malformed header refused with its exact message, fp16/bf16
 * conversions checked exhaustively against a direct formula, writer round trips (F32 exact,
 * BF16 round-to-nearest-even), metadata, and atomic replacement of an existing file. */
#include "tests/test_util.h"

#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/safetensors.h"

/* ---- helpers ----------------------------------------------------------------------------- */

/* Returns a malloc'd safetensors image: the 8-byte length of header, header, then data_size
 * bytes copied from data (zeros when data is NULL). */
static unsigned char *make_image(const char *header, const void *data, size_t data_size,
                                 size_t *size) {
    size_t n = strlen(header);
    *size = 8 + n + data_size;
    unsigned char *p = calloc(1, *size);
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)((unsigned long long)n >> (8 * i));
    memcpy(p + 8, header, n);
    if (data) memcpy(p + 8 + n, data, data_size);
    return p;
}

static void put_u16(unsigned char *p, unsigned v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put_f32(unsigned char *p, float x) {
    unsigned u;
    memcpy(&u, &x, 4);
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(u >> (8 * i));
}

static unsigned f32_bits(float x) {
    unsigned u;
    memcpy(&u, &x, 4);
    return u;
}

static float bits_f32(unsigned u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}

static int all_zero(const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return 0;
    return 1;
}

/* Parses the image and asserts it is refused with exactly `want`, leaving f zeroed. */
static void expect_refused(const unsigned char *image, size_t size, const char *want) {
    SafetensorsFile f;
    CkError err = {{0}};
    int rc = safetensors_parse(&f, image, size, &err);
    /* the header, for the failure message (it may lack a NUL, hence the bound) */
    int shown = size > 8 ? (int)(size - 8 < 200 ? size - 8 : 200) : 0;
    const char *header = size > 8 ? (const char *)image + 8 : "";
    if (rc == 0) {
        safetensors_close(&f);
        fail_msg("header %.*s\naccepted; expected \"%s\"", shown, header, want);
    }
    if (strcmp(err.msg, want) != 0)
        fail_msg("header %.*s\ngot      \"%s\"\nexpected \"%s\"", shown, header, err.msg, want);
    assert_true(all_zero(&f, sizeof f));
}

static void expect_header_refused(const char *header, size_t data_size, const char *want) {
    size_t size;
    unsigned char *image = make_image(header, NULL, data_size, &size);
    expect_refused(image, size, want);
    free(image);
}

/* Number of entries in dir other than . and .., and whether `only` is the single one. */
static int count_dir_entries(const char *dir, const char *only, int *only_found) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    *only_found = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        n++;
        if (only && strcmp(e->d_name, only) == 0) *only_found = 1;
    }
    closedir(d);
    return n;
}

static char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static void remove_tree(const char *dir) {
    assert_int_equal(test_remove_dir(dir), 0);
}

/* ---- a valid hand-built file --------------------------------------------------------------- */

/* a: F32 [2] = {1.5, -3.25}; b: F16 [2, 3] of special values; c: BF16 [2] = {1.0, -3.0};
 * s: F32 scalar 7.0; e: F32 [0, 5] (empty); i: I32 [1]. The header is in no particular order,
 * padded with spaces, and the data is in yet another order. */
static const char VALID_HEADER[] =
    "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"caf\xc3\xa9 \\\"q\\\"\"},"
    "\"c\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[20,24]},"
    "\"b\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[8,20]},"
    "\"a\":{\"data_offsets\":[0,8],\"shape\":[2],\"dtype\":\"F32\"},"
    "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[24,28]},"
    "\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[28,28]},"
    "\"i\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[28,32]}}    ";

static const unsigned F16_BITS[6] = {0x3C00, 0xC000, 0x7C00, 0x0001, 0x8000, 0x7BFF};

static unsigned char *make_valid(size_t *size) {
    unsigned char data[32] = {0};
    put_f32(data, 1.5f);
    put_f32(data + 4, -3.25f);
    for (int i = 0; i < 6; i++) put_u16(data + 8 + 2 * i, F16_BITS[i]);
    put_u16(data + 20, 0x3F80);
    put_u16(data + 22, 0xC040);
    put_f32(data + 24, 7.0f);
    data[28] = 42;
    return make_image(VALID_HEADER, data, sizeof data, size);
}

static void check_valid(const SafetensorsFile *f) {
    assert_int_equal(safetensors_count(f), 6);
    const char *names[] = {"a", "b", "c", "e", "i", "s"};
    for (size_t i = 0; i < 6; i++) assert_string_equal(safetensors_at(f, i)->name, names[i]);
    assert_null(safetensors_at(f, 6));
    assert_null(safetensors_find(f, "nope"));
    assert_null(safetensors_find(f, "__metadata__"));

    CkError err = {{0}};
    float out[6];
    const SafetensorsTensor *a = safetensors_find(f, "a");
    assert_non_null(a);
    assert_int_equal(a->dtype, ST_F32);
    assert_int_equal(a->ndim, 1);
    assert_int_equal(a->shape[0], 2);
    assert_int_equal(a->numel, 2);
    assert_int_equal(safetensors_read_f32(f, a, out, &err), 0);
    assert_true(out[0] == 1.5f && out[1] == -3.25f);
    /* Only the file's own entries have ranges known to be inside its data. */
    SafetensorsTensor forged = *a;
    forged.end = 1u << 30;
    assert_int_equal(safetensors_read_f32(f, &forged, out, &err), -1);
    assert_string_equal(err.msg, "tensor is not an entry of this file");

    const SafetensorsTensor *b = safetensors_find(f, "b");
    assert_int_equal(b->dtype, ST_F16);
    assert_int_equal(b->ndim, 2);
    assert_int_equal(b->shape[0], 2);
    assert_int_equal(b->shape[1], 3);
    assert_int_equal(b->numel, 6);
    assert_int_equal(b->begin, 8);
    assert_int_equal(b->end, 20);
    assert_int_equal(safetensors_read_f32(f, b, out, &err), 0);
    assert_true(out[0] == 1.0f);
    assert_true(out[1] == -2.0f);
    assert_true(isinf(out[2]) && out[2] > 0);
    assert_true(out[3] == 5.960464477539063e-08f);
    assert_true(out[4] == 0.0f && signbit(out[4]));
    assert_true(out[5] == 65504.0f);

    const SafetensorsTensor *c = safetensors_find(f, "c");
    assert_int_equal(c->dtype, ST_BF16);
    assert_int_equal(safetensors_read_f32(f, c, out, &err), 0);
    assert_true(out[0] == 1.0f && out[1] == -3.0f);

    const SafetensorsTensor *s = safetensors_find(f, "s");
    assert_int_equal(s->ndim, 0);
    assert_int_equal(s->numel, 1);
    assert_int_equal(safetensors_read_f32(f, s, out, &err), 0);
    assert_true(out[0] == 7.0f);

    const SafetensorsTensor *e = safetensors_find(f, "e");
    assert_int_equal(e->numel, 0);
    assert_int_equal(safetensors_read_f32(f, e, NULL, &err), 0);

    /* Other dtypes are sized and validated but not converted. */
    const SafetensorsTensor *i = safetensors_find(f, "i");
    assert_int_equal(i->dtype, ST_I32);
    assert_int_equal(((const unsigned char *)safetensors_data(f, i))[0], 42);
    assert_int_equal(safetensors_read_f32(f, i, out, &err), -1);
    assert_string_equal(
        err.msg, "tensor 'i': reading I32 as fp32 is not supported (only F32, F16 and BF16)");

    assert_string_equal(safetensors_metadata(f, "format"), "pt");
    assert_string_equal(safetensors_metadata(f, "note"), "caf\xc3\xa9 \"q\"");
    assert_null(safetensors_metadata(f, "missing"));
}

static void test_parse_valid(void **state) {
    (void)state;
    size_t size;
    unsigned char *image = make_valid(&size);
    SafetensorsFile f;
    CkError err = {{0}};
    if (safetensors_parse(&f, image, size, &err) != 0) fail_msg("%s", err.msg);
    assert_null(f.map);
    check_valid(&f);
    safetensors_close(&f);
    assert_true(all_zero(&f, sizeof f));
    safetensors_close(&f); /* closing twice is harmless */
    free(image);
}

static void test_open_valid_and_missing(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    char *path = join_path(dir, "m.safetensors");
    size_t size;
    unsigned char *image = make_valid(&size);
    assert_int_equal(test_write_file(path, image, size), 0);
    SafetensorsFile f;
    CkError err = {{0}};
    if (safetensors_open(&f, path, &err) != 0) fail_msg("%s", err.msg);
    assert_non_null(f.map);
    check_valid(&f);
    safetensors_close(&f);

    char want[512];
    char *missing = join_path(dir, "none.safetensors");
    assert_int_equal(safetensors_open(&f, missing, &err), -1);
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", missing);
    assert_string_equal(err.msg, want);
    assert_int_equal(safetensors_open(&f, dir, &err), -1);
    snprintf(want, sizeof want, "%s: not a regular file", dir);
    assert_string_equal(err.msg, want);

    /* A truncated download: the header promises more than the file has; the path is named. */
    assert_int_equal(test_write_file(path, image, size - 4), 0);
    assert_int_equal(safetensors_open(&f, path, &err), -1);
    snprintf(want, sizeof want,
             "%s: tensor 'i': data_offsets [28, 32] are out of range of the 28-byte data buffer",
             path);
    assert_string_equal(err.msg, want);
    free(missing);
    free(image);
    free(path);
    remove_tree(dir);
    free(dir);
}

static void test_short_and_empty_files(void **state) {
    (void)state;
    unsigned char bytes[8] = {2, 0, 0, 0, 0, 0, 0, 0};
    expect_refused(bytes, 0, "file is 0 bytes, shorter than the 8-byte header length");
    expect_refused(bytes, 7, "file is 7 bytes, shorter than the 8-byte header length");
    /* Eight bytes of length and nothing after: the header is past the end. */
    expect_refused(bytes, 8,
                   "header length 2 is past the end of the file (0 bytes follow the "
                   "length)");

    char *dir = test_temp_dir();
    char *path = join_path(dir, "empty.safetensors");
    assert_int_equal(test_write_file(path, "", 0), 0);
    SafetensorsFile f;
    CkError err = {{0}};
    assert_int_equal(safetensors_open(&f, path, &err), -1);
    char want[512];
    snprintf(want, sizeof want, "%s: file is 0 bytes, shorter than the 8-byte header length", path);
    assert_string_equal(err.msg, want);
    assert_true(all_zero(&f, sizeof f));
    assert_int_equal(test_write_file(path, bytes, 3), 0);
    assert_int_equal(safetensors_open(&f, path, &err), -1);
    snprintf(want, sizeof want, "%s: file is 3 bytes, shorter than the 8-byte header length", path);
    assert_string_equal(err.msg, want);
    free(path);
    remove_tree(dir);
    free(dir);
}

static void test_header_length(void **state) {
    (void)state;
    /* A length near 2^64 must not wrap around when added to 8. */
    unsigned char huge[24];
    memset(huge, 0xff, 8);
    memcpy(huge + 8, "{}              ", 16);
    expect_refused(huge, sizeof huge,
                   "header length 18446744073709551615 is past the end of the file (16 bytes "
                   "follow the length)");
    size_t size;
    unsigned char *image = make_image("{}", NULL, 0, &size);
    image[0] = 3;
    expect_refused(image, size,
                   "header length 3 is past the end of the file (2 bytes follow the "
                   "length)");
    free(image);

    /* A header over the 100 MB limit, in a sparse file so the test costs no disk. */
    char *dir = test_temp_dir();
    char *path = join_path(dir, "big.safetensors");
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    unsigned long long n = 100000001ULL;
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)(n >> (8 * i));
    assert_int_equal(fwrite(len, 1, 8, fp), 8);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(truncate(path, (off_t)(8 + n)), 0);
    SafetensorsFile f;
    CkError err = {{0}};
    assert_int_equal(safetensors_open(&f, path, &err), -1);
    char want[512];
    snprintf(want, sizeof want,
             "%s: header length 100000001 is larger than the 100000000-byte limit", path);
    assert_string_equal(err.msg, want);
    free(path);
    remove_tree(dir);
    free(dir);
}

typedef struct {
    const char *header;
    size_t data_size;
    const char *msg;
} BadCase;

#define T(dtype, shape, b, e)                                                                      \
    "{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":[" b "," e "]}"

static const BadCase BAD_JSON[] = {
    {"", 0, "header is not valid JSON (near byte 0)"},
    {"{\"a\": ", 0, "header is not valid JSON (near byte 6)"},
    {"{\"a\":{}} x", 0, "header has bytes after the JSON value (byte 9)"},
    {"{} {}", 0, "header has bytes after the JSON value (byte 3)"},
    {"{\"\xff\":1}", 0, "header is not valid UTF-8 (byte 2)"},
    {"{\"\xc0\x80\":1}", 0, "header is not valid UTF-8 (byte 2)"},     /* overlong NUL */
    {"{\"\xed\xa0\x80\":1}", 0, "header is not valid UTF-8 (byte 2)"}, /* a surrogate */
    {"[1,2]", 0, "header is not a JSON object"},
    {"\"w\"", 0, "header is not a JSON object"},
    {"{\"w\":5}", 0, "tensor 'w': entry is not an object"},
    {"{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'w': missing \"dtype\""},
    {"{\"w\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     "tensor 'w': \"dtype\" is not a string"},
    {"{\"w\":" T("F17", "[1]", "0", "4") "}", 4, "unknown dtype 'F17' for tensor 'w'"},
    {"{\"w\":" T("f32", "[1]", "0", "4") "}", 4, "unknown dtype 'f32' for tensor 'w'"},
    {"{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "tensor 'w': missing \"shape\""},
    {"{\"w\":" T("F32", "4", "0", "16") "}", 16, "tensor 'w': \"shape\" is not an array"},
    {"{\"w\":" T("F32", "[2,-2]", "0", "16") "}", 16,
     "tensor 'w': shape[1] is not a non-negative integer"},
    {"{\"w\":" T("F32", "[1.5]", "0", "4") "}", 4,
     "tensor 'w': shape[0] is not a non-negative integer"},
    {"{\"w\":" T("F32", "[\"4\"]", "0", "16") "}", 16,
     "tensor 'w': shape[0] is not a non-negative integer"},
    {"{\"w\":" T("F32", "[1e300]", "0", "4") "}", 4,
     "tensor 'w': shape[0] is not a non-negative integer"},
    {"{\"w\":" T("F32", "[1,1,1,1,1,1,1,1,1]", "0", "4") "}", 4,
     "tensor 'w': shape has 9 dimensions, more than the 8 supported"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "tensor 'w': missing \"data_offsets\""},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
     "tensor 'w': \"data_offsets\" is not an array of two integers"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{\"a\":0,\"b\":4}}}", 4,
     "tensor 'w': \"data_offsets\" is not an array of two integers"},
    {"{\"w\":" T("F32", "[1]", "-4", "0") "}", 4,
     "tensor 'w': data_offsets are not non-negative integers"},
    {"{\"w\":" T("F32", "[1]", "0", "\"4\"") "}", 4,
     "tensor 'w': data_offsets are not non-negative integers"},
    {"{\"w\":" T("F32", "[1]", "8", "4") "}", 8,
     "tensor 'w': data_offsets [8, 4] are not in order"},
    {"{\"w\":" T("F32", "[4]", "0", "16") "}", 8,
     "tensor 'w': data_offsets [0, 16] are out of range of the 8-byte data buffer"},
    {"{\"w\":" T("F32", "[1]", "9007199254740988", "9007199254740992") "}", 8,
     "tensor 'w': data_offsets [9007199254740988, 9007199254740992] are out of range of the "
     "8-byte data buffer"},
    /* Past 2^53 a double no longer holds every integer: refused rather than rounded. */
    {"{\"w\":" T("F32", "[1]", "9007199254740992", "9007199254740996") "}", 8,
     "tensor 'w': data_offsets are not non-negative integers"},
    {"{\"w\":" T("F32", "[9007199254740994]", "0", "4") "}", 4,
     "tensor 'w': shape[0] is not a non-negative integer"},
    {"{\"w\":" T("F32", "[3]", "0", "8") "}", 8,
     "tensor 'w': shape [3] of F32 is 12 bytes but data_offsets span 8"},
    {"{\"w\":" T("BF16", "[2,2]", "0", "16") "}", 16,
     "tensor 'w': shape [2, 2] of BF16 is 8 bytes but data_offsets span 16"},
    {"{\"w\":" T("F32", "[4294967296,4294967296,16]", "0", "0") "}", 0,
     "tensor 'w': the shape's element count overflows"},
    {"{\"w\":" T("F64", "[1125899906842624,4096]", "0", "0") "}", 0,
     "tensor 'w': the shape's byte size overflows"},
    {"{\"w\":" T("F4", "[3]", "0", "1") "}", 1,
     "tensor 'w': shape [3] of F4 does not fill whole bytes"},
    {"{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
     "tensor 'w': key \"dtype\" appears twice"},
    {"{\"w\":" T("F32", "[1]", "0", "4") ",\"w\":" T("F32", "[1]", "4", "8") "}", 8,
     "duplicate tensor name 'w'"},
    {"{\"a\":" T("F32", "[2]", "0", "8") ",\"b\":" T("F32", "[2]", "4", "12") "}", 12,
     "tensor 'b' [4, 12) overlaps tensor 'a' [0, 8)"},
    {"{\"a\":" T("F32", "[2]", "0", "8") ",\"b\":" T("F32", "[2]", "0", "8") "}", 8,
     "tensor 'b' [0, 8) overlaps tensor 'a' [0, 8)"},
    {"{\"a\":" T("F32", "[2]", "0", "8") ",\"z\":" T("F32", "[0]", "4", "4") "}", 8,
     "tensor 'z' [4, 4) overlaps tensor 'a' [0, 8)"},
    {"{\"a\":" T("F32", "[1]", "0", "4") ",\"b\":" T("F32", "[1]", "8", "12") "}", 12,
     "tensor 'b' begins at byte 8 of the data buffer, leaving bytes [4, 8) unindexed (the "
     "buffer must be fully indexed)"},
    {"{\"a\":" T("F32", "[1]", "0", "4") "}", 8,
     "the tensors end at byte 4 but the data buffer has 8 bytes (the buffer must be fully "
     "indexed)"},
    {"{}", 4, "the header lists no tensors but the data buffer has 4 bytes"},
    {"{\"__metadata__\":[]}", 0, "\"__metadata__\" is not an object"},
    {"{\"__metadata__\":{\"n\":1}}", 0, "metadata value for key 'n' is not a string"},
    {"{\"__metadata__\":{\"n\":null}}", 0, "metadata value for key 'n' is not a string"},
    {"{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "duplicate metadata key 'k'"},
    {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate key '__metadata__'"},
};

static void test_malformed_headers(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof BAD_JSON / sizeof *BAD_JSON; i++) {
        const BadCase *c = &BAD_JSON[i];
        expect_header_refused(c->header, c->data_size, c->msg);
    }
}

/* Cases whose header bytes cannot be a C string. */
static void test_header_with_nul(void **state) {
    (void)state;
    static const char header[] = "{}\0     ";
    static const char header2[] = "{\"a\0\":1}";
    unsigned char image[8 + 16] = {0};
    image[0] = (unsigned char)(sizeof header - 1);
    memcpy(image + 8, header, sizeof header - 1);
    expect_refused(image, 8 + sizeof header - 1, "header has bytes after the JSON value (byte 2)");
    /* A NUL inside a string ends cJSON's input there: the JSON is unterminated. */
    image[0] = (unsigned char)(sizeof header2 - 1);
    memcpy(image + 8, header2, sizeof header2 - 1);
    expect_refused(image, 8 + sizeof header2 - 1, "header is not valid JSON (near byte 2)");
}

/* Empty tensors may sit anywhere on a boundary; several may share an offset. */
static void test_empty_tensors_and_every_dtype(void **state) {
    (void)state;
    static const char header[] =
        "{\"z0\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}"
        ",\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}"
        ",\"z1\":{\"dtype\":\"BF16\",\"shape\":[3,0,1000000],\"data_offsets\":[8,8]}"
        ",\"z2\":{\"dtype\":\"F16\",\"shape\":[0],\"data_offsets\":[8,8]}"
        ",\"b\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[8,9]}"
        ",\"c\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[9,10]}"
        ",\"d\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[10,12]}"
        ",\"e\":{\"dtype\":\"F4\",\"shape\":[2],\"data_offsets\":[12,13]}"
        ",\"f\":{\"dtype\":\"F6_E2M3\",\"shape\":[4],\"data_offsets\":[13,16]}"
        ",\"g\":{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[16,24]}"
        ",\"h\":{\"dtype\":\"U64\",\"shape\":[1],\"data_offsets\":[24,32]}"
        ",\"z3\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[32,32]}}";
    size_t size;
    unsigned char *image = make_image(header, NULL, 32, &size);
    SafetensorsFile f;
    CkError err = {{0}};
    if (safetensors_parse(&f, image, size, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(safetensors_count(&f), 12);
    assert_int_equal(safetensors_find(&f, "z1")->numel, 0);
    assert_int_equal(safetensors_find(&f, "f")->dtype, ST_F6_E2M3);
    float x;
    assert_int_equal(safetensors_read_f32(&f, safetensors_find(&f, "a"), &x, &err), -1);
    assert_string_equal(
        err.msg, "tensor 'a': reading F64 as fp32 is not supported (only F32, F16 and BF16)");
    safetensors_close(&f);
    free(image);

    /* No tensors and no data is a valid (empty) file. */
    image = make_image("{}", NULL, 0, &size);
    assert_int_equal(safetensors_parse(&f, image, size, &err), 0);
    assert_int_equal(safetensors_count(&f), 0);
    assert_null(safetensors_find(&f, "a"));
    assert_null(safetensors_metadata(&f, "a"));
    safetensors_close(&f);
    free(image);
}

/* ---- conversions ------------------------------------------------------------------------ */

static double f16_reference(unsigned h) {
    int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
    double v;
    if (exp == 0)
        v = ldexp(mant, -24);
    else if (exp == 31)
        v = mant ? NAN : INFINITY;
    else
        v = ldexp(1024 + mant, exp - 25);
    return sign ? -v : v;
}

static void test_f16_exhaustive(void **state) {
    (void)state;
    for (unsigned h = 0; h < 65536; h++) {
        float got = safetensors_f16_to_f32((unsigned short)h);
        double want = f16_reference(h);
        if (isnan(want)) {
            assert_true(isnan(got));
            /* sign and payload survive: converting back by truncation gives the same bits */
            unsigned u = f32_bits(got);
            assert_int_equal((u >> 16) & 0x8000, h & 0x8000);
            assert_int_equal((u >> 13) & 0x3ff, h & 0x3ff);
        } else if ((double)got != want || !signbit(got) != !signbit(want)) {
            fail_msg("f16 0x%04x: got %.17g, want %.17g", h, (double)got, want);
        }
    }
    assert_true(safetensors_f16_to_f32(0x0400) == 6.103515625e-05f);       /* smallest normal */
    assert_true(safetensors_f16_to_f32(0x03FF) == 6.097555160522461e-05f); /* largest subnormal */
    assert_true(safetensors_f16_to_f32(0x0001) == 5.960464477539063e-08f);
}

static void test_bf16_conversions(void **state) {
    (void)state;
    for (unsigned b = 0; b < 65536; b++) {
        float x = safetensors_bf16_to_f32((unsigned short)b);
        assert_int_equal(f32_bits(x), b << 16);
        if (!isnan(x)) assert_int_equal(safetensors_f32_to_bf16(x), b); /* exact values stay */
    }
    assert_true(safetensors_bf16_to_f32(0x3F80) == 1.0f);
    /* Exactly halfway between two bf16 numbers: ties go to the even one. */
    assert_int_equal(safetensors_f32_to_bf16(bits_f32(0x3F808000)), 0x3F80); /* 1 + 2^-8 */
    assert_int_equal(safetensors_f32_to_bf16(bits_f32(0x3F818000)), 0x3F82); /* 1 + 3*2^-8 */
    assert_int_equal(safetensors_f32_to_bf16(bits_f32(0xBF808000)), 0xBF80);
    assert_int_equal(safetensors_f32_to_bf16(bits_f32(0xBF818000)), 0xBF82);
    /* Just off the tie rounds to the nearer one. */
    assert_int_equal(safetensors_f32_to_bf16(bits_f32(0x3F808001)), 0x3F81);
    assert_int_equal(safetensors_f32_to_bf16(bits_f32(0x3F807FFF)), 0x3F80);
    assert_int_equal(safetensors_f32_to_bf16(bits_f32(0x3F817FFF)), 0x3F81);
    /* Overflow to infinity, infinities, NaN kept NaN even when its payload is in low bits. */
    assert_int_equal(safetensors_f32_to_bf16(FLT_MAX), 0x7F80);
    assert_int_equal(safetensors_f32_to_bf16(-INFINITY), 0xFF80);
    assert_true(isnan(safetensors_bf16_to_f32(safetensors_f32_to_bf16(bits_f32(0x7F800001)))));
    assert_true(isnan(safetensors_bf16_to_f32(safetensors_f32_to_bf16(bits_f32(0xFFFFFFFF)))));
    assert_true(signbit(safetensors_bf16_to_f32(safetensors_f32_to_bf16(-0.0f))));
}

/* ---- writer ----------------------------------------------------------------------------- */

/* f32 -> f16 rounding: every finite binary16 value survives a round trip; ties go to even;
 * overflow, subnormals and NaN are handled. */
static void test_f32_to_f16(void **state) {
    (void)state;
    for (unsigned h = 0; h < 0x10000u; h++) {
        float f = safetensors_f16_to_f32((unsigned short)h);
        if (isnan(f)) {
            assert_true(isnan(safetensors_f16_to_f32(safetensors_f32_to_f16(f))));
            continue;
        }
        assert_int_equal(safetensors_f32_to_f16(f), h);
    }
    assert_int_equal(safetensors_f32_to_f16(1.0f + 0x1p-11f), 0x3C00);     /* tie: even below */
    assert_int_equal(safetensors_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3C02); /* tie: even above */
    assert_int_equal(safetensors_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3C01);
    assert_int_equal(safetensors_f32_to_f16(65519.0f), 0x7BFF);
    assert_int_equal(safetensors_f32_to_f16(65520.0f), 0x7C00);
    assert_int_equal(safetensors_f32_to_f16(-1e9f), 0xFC00);
    assert_int_equal(safetensors_f32_to_f16(0x1p-25f), 0x0000);     /* tie between 0 and 2^-24 */
    assert_int_equal(safetensors_f32_to_f16(3 * 0x1p-25f), 0x0002); /* tie: to even */
    assert_int_equal(safetensors_f32_to_f16(-0x1p-24f), 0x8001);
    assert_int_equal(safetensors_f32_to_f16(0x1p-14f - 0x1p-26f), 0x0400); /* rounds up to normal */
}

static void test_writer_round_trip(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    char *path = join_path(dir, "out.safetensors");

    float w32[6] = {1.0f, -0.0f, 1e-45f, 3.4e38f, -123.456f, 0.1f};
    float w16[7];
    srand(7);
    for (int i = 0; i < 7; i++) w16[i] = ((float)rand() / (float)RAND_MAX - 0.5f) * 1000.0f;
    float ties[2] = {bits_f32(0x3F808000), bits_f32(0x3F818000)};
    float scalar = 2.5f;
    SafetensorsWriter w;
    safetensors_writer_init(&w);
    CkError err = {{0}};
    size_t s23[2] = {2, 3}, s7[1] = {7}, s2[1] = {2}, s04[2] = {0, 4};
    /* Added out of name order and mixing widths: BF16 "b.odd" has an odd element count, so
     * F32 data after it would be misaligned if the layout followed the name order. */
    assert_int_equal(safetensors_writer_add(&w, "c.f32", ST_F32, 2, s23, w32, &err), 0);
    assert_int_equal(safetensors_writer_add(&w, "b.odd", ST_BF16, 1, s7, w16, &err), 0);
    assert_int_equal(safetensors_writer_add(&w, "a.ties", ST_BF16, 1, s2, ties, &err), 0);
    assert_int_equal(safetensors_writer_add(&w, "d.scalar", ST_F32, 0, NULL, &scalar, &err), 0);
    assert_int_equal(safetensors_writer_add(&w, "e.empty", ST_F32, 2, s04, NULL, &err), 0);
    assert_int_equal(safetensors_writer_set_metadata(&w, "format", "pt", &err), 0);
    assert_int_equal(
        safetensors_writer_set_metadata(&w, "odd", "a\"b\\c\nd\te\x01 caf\xc3\xa9", &err), 0);
    assert_int_equal(safetensors_writer_set_metadata(&w, "format", "cutkit", &err), 0);
    /* The writer holds pointers: a change made before writing is what gets written. */
    scalar = 4.25f;
    if (safetensors_write(&w, path, &err) != 0) fail_msg("%s", err.msg);
    safetensors_writer_free(&w);
    assert_true(all_zero(&w, sizeof w));

    /* The layout: data 8-byte aligned, header tensors in name order, padding spaces. */
    size_t size;
    unsigned char *raw = (unsigned char *)test_read_file(path, &size);
    assert_non_null(raw);
    size_t n = 0;
    for (int i = 0; i < 8; i++) n |= (size_t)raw[i] << (8 * i);
    assert_int_equal((8 + n) % 8, 0);
    char *header = strndup((const char *)raw + 8, n);
    const char *pa = strstr(header, "\"a.ties\""), *pb = strstr(header, "\"b.odd\"");
    const char *pc = strstr(header, "\"c.f32\""), *pd = strstr(header, "\"d.scalar\"");
    const char *pe = strstr(header, "\"e.empty\""), *pm = strstr(header, "\"__metadata__\"");
    assert_true(pm && pa && pb && pc && pd && pe);
    assert_true(pm < pa && pa < pb && pb < pc && pc < pd && pd < pe);
    assert_non_null(strstr(header, "\"odd\":\"a\\\"b\\\\c\\nd\\te\\u0001 caf\xc3\xa9\""));
    size_t close_brace = (size_t)(strrchr(header, '}') - header);
    for (size_t i = close_brace + 1; i < n; i++) assert_int_equal(header[i], ' ');
    free(header);
    free(raw);

    SafetensorsFile f;
    if (safetensors_open(&f, path, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(safetensors_count(&f), 5);
    for (size_t i = 0; i < safetensors_count(&f); i++) {
        const SafetensorsTensor *t = safetensors_at(&f, i);
        assert_int_equal(t->begin % (size_t)(safetensors_dtype_bits(t->dtype) / 8), 0);
    }
    float out[7];
    const SafetensorsTensor *t = safetensors_find(&f, "c.f32");
    assert_int_equal(t->dtype, ST_F32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(safetensors_read_f32(&f, t, out, &err), 0);
    for (int i = 0; i < 6; i++) assert_int_equal(f32_bits(out[i]), f32_bits(w32[i])); /* exact */

    t = safetensors_find(&f, "b.odd");
    assert_int_equal(t->dtype, ST_BF16);
    assert_int_equal(t->end - t->begin, 14);
    assert_int_equal(safetensors_read_f32(&f, t, out, &err), 0);
    for (int i = 0; i < 7; i++) {
        /* bf16 keeps 8 significant bits: rounding to nearest is off by at most half a unit
         * in the last place, 2^-8 of the value */
        assert_close(out[i], w16[i], fabsf(w16[i]) * 0x1p-8f);
        assert_int_equal(f32_bits(out[i]), (unsigned)safetensors_f32_to_bf16(w16[i]) << 16);
    }
    t = safetensors_find(&f, "a.ties");
    assert_int_equal(safetensors_read_f32(&f, t, out, &err), 0);
    assert_true(out[0] == 1.0f);
    assert_true(out[1] == 1.015625f); /* 0x3F82 */

    t = safetensors_find(&f, "d.scalar");
    assert_int_equal(t->ndim, 0);
    assert_int_equal(safetensors_read_f32(&f, t, out, &err), 0);
    assert_true(out[0] == 4.25f);
    t = safetensors_find(&f, "e.empty");
    assert_int_equal(t->numel, 0);
    assert_int_equal(t->shape[1], 4);

    assert_string_equal(safetensors_metadata(&f, "format"), "cutkit");
    assert_string_equal(safetensors_metadata(&f, "odd"), "a\"b\\c\nd\te\x01 caf\xc3\xa9");
    assert_int_equal(f.n_metadata, 2);
    safetensors_close(&f);

    int found;
    assert_int_equal(count_dir_entries(dir, "out.safetensors", &found), 1);
    assert_true(found);
    free(path);
    remove_tree(dir);
    free(dir);
}

static void test_writer_empty_and_refusals(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    char *path = join_path(dir, "empty.safetensors");
    SafetensorsWriter w;
    safetensors_writer_init(&w);
    CkError err = {{0}};
    if (safetensors_write(&w, path, &err) != 0) fail_msg("%s", err.msg);
    size_t size;
    char *raw = test_read_file(path, &size);
    assert_int_equal(size, 16);
    assert_memory_equal(raw, "\x08\0\0\0\0\0\0\0{}      ", 16);
    free(raw);

    float x[2] = {0};
    size_t s1[1] = {1}, s5[5] = {1, 1, 1, 1, 1};
    assert_int_equal(safetensors_writer_add(&w, "x", ST_F32, 1, s1, x, &err), 0);
    assert_int_equal(safetensors_writer_add(&w, "x", ST_BF16, 1, s1, x, &err), -1);
    assert_string_equal(err.msg, "duplicate tensor name 'x'");
    assert_int_equal(safetensors_writer_add(&w, "y", ST_F64, 1, s1, x, &err), -1);
    assert_string_equal(err.msg, "tensor 'y': the writer stores F32, F16 or BF16, not F64");
    assert_int_equal(safetensors_writer_add(&w, "y", ST_F32, 5, s5, x, &err), -1);
    assert_string_equal(err.msg, "tensor 'y': 5 dimensions (the writer supports 0 to 4)");
    assert_int_equal(safetensors_writer_add(&w, "__metadata__", ST_F32, 1, s1, x, &err), -1);
    assert_string_equal(err.msg, "tensor name '__metadata__' is reserved");
    assert_int_equal(safetensors_writer_add(&w, "\xff", ST_F32, 1, s1, x, &err), -1);
    assert_string_equal(err.msg, "tensor name is not valid UTF-8");
    assert_int_equal(safetensors_writer_add(&w, "y", ST_F32, 1, s1, NULL, &err), -1);
    assert_string_equal(err.msg, "tensor 'y': no data");
    size_t huge[2] = {(size_t)1 << 40, (size_t)1 << 40};
    assert_int_equal(safetensors_writer_add(&w, "y", ST_F32, 2, huge, x, &err), -1);
    assert_string_equal(err.msg, "tensor 'y': the element count overflows");
    assert_int_equal(safetensors_writer_set_metadata(&w, "k", "\xc3", &err), -1);
    assert_string_equal(err.msg, "metadata key or value is not valid UTF-8");
    assert_int_equal(w.n_tensors, 1);

    /* Many tensors, to exercise growth, read back by name. */
    char name[32];
    float vals[100];
    for (int i = 0; i < 100; i++) {
        vals[i] = (float)i;
        snprintf(name, sizeof name, "t.%03d", 99 - i);
        assert_int_equal(
            safetensors_writer_add(&w, name, i % 2 ? ST_BF16 : ST_F32, 1, s1, &vals[i], &err), 0);
    }
    if (safetensors_write(&w, path, &err) != 0) fail_msg("%s", err.msg);
    safetensors_writer_free(&w);
    SafetensorsFile f;
    if (safetensors_open(&f, path, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(safetensors_count(&f), 101);
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "t.%03d", 99 - i);
        float v;
        assert_int_equal(safetensors_read_f32(&f, safetensors_find(&f, name), &v, &err), 0);
        assert_true(v == (float)i);
    }
    safetensors_close(&f);
    free(path);
    remove_tree(dir);
    free(dir);
}

/* Writes one F32 tensor [n] of value v to path. */
static int write_constant(const char *path, size_t n, float v, CkError *err) {
    float *data = malloc(n * sizeof *data);
    for (size_t i = 0; i < n; i++) data[i] = v;
    SafetensorsWriter w;
    safetensors_writer_init(&w);
    int rc = safetensors_writer_add(&w, "w", ST_F32, 1, &n, data, err);
    if (rc == 0) rc = safetensors_write(&w, path, err);
    safetensors_writer_free(&w);
    free(data);
    return rc;
}

/* Reads back the tensor written by write_constant, returning its first value (NAN on any
 * failure) and its length. */
static float read_constant(const char *path, size_t *n) {
    SafetensorsFile f;
    CkError err = {{0}};
    if (safetensors_open(&f, path, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return NAN;
    }
    const SafetensorsTensor *t = safetensors_find(&f, "w");
    float *out = malloc((t->numel ? t->numel : 1) * sizeof *out);
    float v = NAN;
    if (t->numel && safetensors_read_f32(&f, t, out, &err) == 0) v = out[0];
    for (size_t i = 1; i < t->numel; i++)
        if (out[i] != v) v = NAN;
    *n = t->numel;
    free(out);
    safetensors_close(&f);
    return v;
}

static void test_write_is_atomic(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    char *path = join_path(dir, "model.safetensors");
    CkError err = {{0}};
    int found;

    /* Replacing an existing file: afterwards the new content, and nothing else in the
     * directory (the temporary file was renamed, not left behind). */
    assert_int_equal(write_constant(path, 10, 1.0f, &err), 0);
    assert_int_equal(write_constant(path, 20, 2.0f, &err), 0);
    size_t n;
    assert_true(read_constant(path, &n) == 2.0f);
    assert_int_equal(n, 20);
    assert_int_equal(count_dir_entries(dir, "model.safetensors", &found), 1);
    assert_true(found);

    /* A write that fails half way (the file size limit stands in for a full disk) leaves the
     * old file untouched and removes its temporary file. */
    struct rlimit old_limit, limit;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    limit = old_limit;
    limit.rlim_cur = 4096;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &limit), 0);
    int rc = write_constant(path, 100000, 3.0f, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
    signal(SIGXFSZ, old_handler);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err.msg, "cannot write"));
    assert_non_null(strstr(err.msg, "File too large"));
    assert_true(read_constant(path, &n) == 2.0f);
    assert_int_equal(n, 20);
    assert_int_equal(count_dir_entries(dir, "model.safetensors", &found), 1);
    assert_true(found);

    /* A rename that fails (the target is a directory): the error names it, the temporary file
     * is gone and the directory is untouched. */
    char *sub = join_path(dir, "sub");
    assert_int_equal(mkdir(sub, 0755), 0);
    char *inner = join_path(sub, "keep");
    assert_int_equal(test_write_file(inner, "x", 1), 0);
    assert_int_equal(write_constant(sub, 4, 1.0f, &err), -1);
    assert_non_null(strstr(err.msg, sub));
    assert_non_null(strstr(err.msg, "Is a directory"));
    assert_int_equal(count_dir_entries(dir, "model.safetensors", &found), 2);
    assert_int_equal(count_dir_entries(sub, "keep", &found), 1);
    assert_true(found);

    /* A directory that does not exist: nothing is created. */
    char *nowhere = join_path(dir, "no/such/dir.safetensors");
    assert_int_equal(write_constant(nowhere, 4, 1.0f, &err), -1);
    assert_non_null(strstr(err.msg, "cannot create"));

    free(nowhere);
    free(inner);
    free(sub);
    free(path);
    remove_tree(dir);
    free(dir);
}

/* ---- fuzzer findings ---------------------------------------------------------------------- */

/* Inputs found by tests/fuzz/fuzz_safetensors.c are replayed here: each must be refused or
 * accepted without touching memory outside the image (ASan/UBSan builds check that), and every
 * tensor of an accepted one must read. */
static void replay(const unsigned char *image, size_t size) {
    /* A private copy of exactly `size` bytes, so an over-read hits the heap redzone. */
    unsigned char *copy = malloc(size ? size : 1);
    memcpy(copy, image, size);
    SafetensorsFile f;
    CkError err = {{0}};
    if (safetensors_parse(&f, copy, size, &err) == 0) {
        for (size_t i = 0; i < safetensors_count(&f); i++) {
            const SafetensorsTensor *t = safetensors_at(&f, i);
            float *out = malloc((t->numel ? t->numel : 1) * sizeof *out);
            safetensors_read_f32(&f, t, out, &err);
            free(out);
        }
        safetensors_close(&f);
    }
    free(copy);
}

#define SEED_CORPUS CUTKIT_SOURCE_DIR "/tests/fuzz/corpus_safetensors"

static void test_fuzz_regressions(void **state) {
    (void)state;
    /* The seed corpus, each file whole and in every truncation (a cut-off download). */
    DIR *d = opendir(SEED_CORPUS);
    assert_non_null(d);
    int files = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char *path = join_path(SEED_CORPUS, e->d_name);
        size_t size;
        unsigned char *image = (unsigned char *)test_read_file(path, &size);
        assert_non_null(image);
        for (size_t n = 0; n <= size; n++) replay(image, n);
        free(image);
        free(path);
        files++;
    }
    closedir(d);
    assert_true(files >= 3);
    size_t size;
    unsigned char *image = make_valid(&size);
    for (size_t n = 0; n <= size; n++) replay(image, n);
    free(image);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_open_valid_and_missing),
        cmocka_unit_test(test_short_and_empty_files),
        cmocka_unit_test(test_header_length),
        cmocka_unit_test(test_malformed_headers),
        cmocka_unit_test(test_header_with_nul),
        cmocka_unit_test(test_empty_tensors_and_every_dtype),
        cmocka_unit_test(test_f16_exhaustive),
        cmocka_unit_test(test_bf16_conversions),
        cmocka_unit_test(test_f32_to_f16),
        cmocka_unit_test(test_writer_round_trip),
        cmocka_unit_test(test_writer_empty_and_refusals),
        cmocka_unit_test(test_write_is_atomic),
        cmocka_unit_test(test_fuzz_regressions),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
