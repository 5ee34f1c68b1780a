/* safetensors.c — the .safetensors reader (mmap + validated header) and the atomic writer.
 *
 * Reading: the 8-byte length is checked against the file, the header bytes are checked to be
 * UTF-8 and copied into a NUL-terminated string for cJSON (so cJSON can never run past the
 * header), and every entry is validated before anything else looks at it: dtype known, shape
 * and offsets non-negative integers, offsets inside the data buffer, the byte range exactly
 * the shape's size, names unique, and the ranges tiling the data buffer. After that, reading a
 * tensor only needs t->begin .. t->end, which are known to be in bounds.
 *
 * Writing: see safetensors_write. Numbers in the header are printed as integers by hand
 * because cJSON prints large integers in exponent form, which the reference parser (serde)
 * refuses for an unsigned field. */
#include "formats/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/strbuf.h"
#include "util/utf8.h"

enum {
    LENGTH_BYTES = 8, /* the u64 header length */
    DATA_ALIGN = 8,   /* the writer pads the header so the data starts 8-byte aligned */
};

/* JSON numbers are doubles in cJSON; above 2^53 they are no longer exact, so a shape or offset
 * beyond that is refused rather than used rounded. (cJSON has already rounded 2^53 + 1 down to
 * 2^53 by the time we see it; that is harmless, as no data buffer is anywhere near that big.) */
static const double MAX_EXACT_INTEGER = 9007199254740992.0;

static const char *const DTYPE_NAMES[ST_DTYPE_COUNT] = {
    [ST_F32] = "F32",         [ST_F16] = "F16",         [ST_BF16] = "BF16",
    [ST_F64] = "F64",         [ST_I8] = "I8",           [ST_I16] = "I16",
    [ST_I32] = "I32",         [ST_I64] = "I64",         [ST_U8] = "U8",
    [ST_U16] = "U16",         [ST_U32] = "U32",         [ST_U64] = "U64",
    [ST_BOOL] = "BOOL",       [ST_F8_E4M3] = "F8_E4M3", [ST_F8_E5M2] = "F8_E5M2",
    [ST_F8_E8M0] = "F8_E8M0", [ST_F6_E2M3] = "F6_E2M3", [ST_F6_E3M2] = "F6_E3M2",
    [ST_F4] = "F4",           [ST_C64] = "C64",
};

static const unsigned char DTYPE_BITS[ST_DTYPE_COUNT] = {
    [ST_F32] = 32,    [ST_F16] = 16,    [ST_BF16] = 16,   [ST_F64] = 64,    [ST_I8] = 8,
    [ST_I16] = 16,    [ST_I32] = 32,    [ST_I64] = 64,    [ST_U8] = 8,      [ST_U16] = 16,
    [ST_U32] = 32,    [ST_U64] = 64,    [ST_BOOL] = 8,    [ST_F8_E4M3] = 8, [ST_F8_E5M2] = 8,
    [ST_F8_E8M0] = 8, [ST_F6_E2M3] = 6, [ST_F6_E3M2] = 6, [ST_F4] = 4,      [ST_C64] = 64,
};

const char *safetensors_dtype_name(SafetensorsDtype dtype) {
    if ((unsigned)dtype >= ST_DTYPE_COUNT) return "?";
    return DTYPE_NAMES[dtype];
}

int safetensors_dtype_bits(SafetensorsDtype dtype) {
    if ((unsigned)dtype >= ST_DTYPE_COUNT) return 0;
    return DTYPE_BITS[dtype];
}

static int dtype_from_name(const char *s, SafetensorsDtype *out) {
    for (int i = 0; i < ST_DTYPE_COUNT; i++) {
        if (strcmp(s, DTYPE_NAMES[i]) == 0) {
            *out = (SafetensorsDtype)i;
            return 0;
        }
    }
    return -1;
}

/* ---- scalar conversions ----------------------------------------------------------------- */

static float f32_from_bits(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

float safetensors_f16_to_f32(unsigned short h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | mant << 13; /* inf, or NaN with its payload */
    } else if (exp != 0) {
        bits = sign | (exp + 127 - 15) << 23 | mant << 13;
    } else if (mant == 0) {
        bits = sign;
    } else {
        /* Subnormal: mant * 2^-24. fp32 has the range to make it normal, so shift the leading
         * 1 up to the implicit-bit position and lower the exponent by the shift. */
        uint32_t shift = 0;
        while (!(mant & 0x400u)) {
            mant <<= 1;
            shift++;
        }
        bits = sign | (127 - 14 - shift) << 23 | (mant & 0x3ffu) << 13;
    }
    return f32_from_bits(bits);
}

float safetensors_bf16_to_f32(unsigned short b) {
    return f32_from_bits((uint32_t)b << 16);
}

unsigned short safetensors_f32_to_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    /* Rounding a NaN could carry into the exponent and make it inf; keep it a quiet NaN. */
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x0040u);
    /* Adding 0x7fff rounds halves down, 0x8000 rounds them up: pick by the kept low bit so
     * ties go to even. Finite values that round past the largest bf16 become inf, as RNE
     * requires. */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}

unsigned short safetensors_f32_to_f16(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    const uint32_t sign = (u >> 16) & 0x8000u, mag = u & 0x7fffffffu;
    if (mag > 0x7f800000u) return (unsigned short)(sign | 0x7e00u);  /* NaN stays NaN */
    if (mag >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u); /* >= 65520: inf */
    if (mag < 0x38800000u) {
        /* below 2^-14: a binary16 subnormal, i.e. a multiple of 2^-24; the scaling by 2^24
         * is exact and lrintf rounds to nearest even in the default rounding mode */
        float f;
        memcpy(&f, &mag, sizeof f);
        return (unsigned short)(sign | (uint32_t)lrintf(f * 16777216.0f));
    }
    /* normal: rebias the exponent (127 -> 15), keep 10 of 23 mantissa bits, round to nearest
     * even; a carry out of the mantissa correctly bumps the exponent */
    uint32_t h = (mag >> 13) - ((uint32_t)(127 - 15) << 10);
    uint32_t rest = mag & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
    return (unsigned short)(sign | h);
}

/* The file is little-endian whatever the host is, so assemble values byte by byte. */
static uint16_t read_u16le(const unsigned char *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t read_u32le(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t read_u64le(const unsigned char *p) {
    return (uint64_t)read_u32le(p) | (uint64_t)read_u32le(p + 4) << 32;
}

/* ---- reader ------------------------------------------------------------------------------ */

static int is_utf8(const char *s) {
    return utf8_valid(s, strlen(s));
}

static char *dup_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* Reads a JSON number that must be an integer in [0, 2^53]. */
static int json_size(const cJSON *v, size_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d > MAX_EXACT_INTEGER || d != floor(d)) return -1;
    if (d > (double)SIZE_MAX) return -1; /* only possible where size_t is 32 bits */
    *out = (size_t)d;
    return 0;
}

static void format_shape(char *buf, size_t cap, const size_t *shape, int ndim) {
    size_t len = 0;
    int w = snprintf(buf, cap, "[");
    len = (size_t)w;
    for (int i = 0; i < ndim && len < cap; i++) {
        w = snprintf(buf + len, cap - len, "%s%zu", i ? ", " : "", shape[i]);
        if (w < 0) return;
        len += (size_t)w;
    }
    if (len < cap) snprintf(buf + len, cap - len, "]");
}

/* Finds key in an entry object, refusing it when it appears more than once (cJSON keeps
 * duplicate keys; the spec forbids them). *found is NULL when the key is absent. */
static int entry_item(const cJSON *entry, const char *key, const cJSON **found, CkError *err) {
    *found = NULL;
    for (const cJSON *c = entry->child; c; c = c->next) {
        if (!c->string || strcmp(c->string, key) != 0) continue;
        if (*found)
            return ck_fail(err, "tensor '%s': key \"%s\" appears twice", entry->string, key);
        *found = c;
    }
    return 0;
}

static int parse_tensor(SafetensorsTensor *t, const cJSON *entry, size_t data_size, CkError *err) {
    const char *name = entry->string;
    if (!cJSON_IsObject(entry)) return ck_fail(err, "tensor '%s': entry is not an object", name);
    const cJSON *dtype, *shape, *offsets;
    if (entry_item(entry, "dtype", &dtype, err) != 0 ||
        entry_item(entry, "shape", &shape, err) != 0 ||
        entry_item(entry, "data_offsets", &offsets, err) != 0)
        return -1;

    if (!dtype) return ck_fail(err, "tensor '%s': missing \"dtype\"", name);
    if (!cJSON_IsString(dtype) || !dtype->valuestring)
        return ck_fail(err, "tensor '%s': \"dtype\" is not a string", name);
    if (dtype_from_name(dtype->valuestring, &t->dtype) != 0)
        return ck_fail(err, "unknown dtype '%s' for tensor '%s'", dtype->valuestring, name);

    if (!shape) return ck_fail(err, "tensor '%s': missing \"shape\"", name);
    if (!cJSON_IsArray(shape)) return ck_fail(err, "tensor '%s': \"shape\" is not an array", name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > SAFETENSORS_MAX_DIMS)
        return ck_fail(err, "tensor '%s': shape has %d dimensions, more than the %d supported",
                       name, ndim, SAFETENSORS_MAX_DIMS);
    t->ndim = 0;
    for (const cJSON *d = shape->child; d; d = d->next) {
        if (json_size(d, &t->shape[t->ndim]) != 0)
            return ck_fail(err, "tensor '%s': shape[%d] is not a non-negative integer", name,
                           t->ndim);
        t->ndim++;
    }

    if (!offsets) return ck_fail(err, "tensor '%s': missing \"data_offsets\"", name);
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2)
        return ck_fail(err, "tensor '%s': \"data_offsets\" is not an array of two integers", name);
    if (json_size(offsets->child, &t->begin) != 0 || json_size(offsets->child->next, &t->end) != 0)
        return ck_fail(err, "tensor '%s': data_offsets are not non-negative integers", name);
    if (t->begin > t->end)
        return ck_fail(err, "tensor '%s': data_offsets [%zu, %zu] are not in order", name, t->begin,
                       t->end);
    if (t->end > data_size)
        return ck_fail(err,
                       "tensor '%s': data_offsets [%zu, %zu] are out of range of the %zu-byte "
                       "data buffer",
                       name, t->begin, t->end, data_size);

    /* The element count, and then the bit count, with overflow checks: a hostile shape must
     * not wrap around to the byte count it claims. A zero dimension makes the tensor empty
     * whatever the others are. */
    size_t numel = 1;
    int empty = 0;
    for (int i = 0; i < t->ndim; i++) empty |= t->shape[i] == 0;
    if (empty) {
        numel = 0;
    } else {
        for (int i = 0; i < t->ndim; i++)
            if (__builtin_mul_overflow(numel, t->shape[i], &numel))
                return ck_fail(err, "tensor '%s': the shape's element count overflows", name);
    }
    t->numel = numel;
    size_t bits;
    if (__builtin_mul_overflow(numel, (size_t)DTYPE_BITS[t->dtype], &bits))
        return ck_fail(err, "tensor '%s': the shape's byte size overflows", name);
    char shape_text[160];
    format_shape(shape_text, sizeof shape_text, t->shape, t->ndim);
    if (bits % 8 != 0)
        return ck_fail(err, "tensor '%s': shape %s of %s does not fill whole bytes", name,
                       shape_text, DTYPE_NAMES[t->dtype]);
    if (bits / 8 != t->end - t->begin)
        return ck_fail(err, "tensor '%s': shape %s of %s is %zu bytes but data_offsets span %zu",
                       name, shape_text, DTYPE_NAMES[t->dtype], bits / 8, t->end - t->begin);
    return 0;
}

static int compare_tensor_names(const void *a, const void *b) {
    return strcmp(((const SafetensorsTensor *)a)->name, ((const SafetensorsTensor *)b)->name);
}

static int compare_meta_keys(const void *a, const void *b) {
    return strcmp(((const SafetensorsMeta *)a)->key, ((const SafetensorsMeta *)b)->key);
}

static int compare_tensor_offsets(const void *a, const void *b) {
    const SafetensorsTensor *x = *(const SafetensorsTensor *const *)a;
    const SafetensorsTensor *y = *(const SafetensorsTensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int parse_metadata(SafetensorsFile *f, const cJSON *meta, CkError *err) {
    if (!cJSON_IsObject(meta)) return ck_fail(err, "\"__metadata__\" is not an object");
    int n = cJSON_GetArraySize(meta);
    if (n == 0) return 0;
    f->metadata = calloc((size_t)n, sizeof *f->metadata);
    if (!f->metadata) return ck_fail(err, "out of memory");
    for (const cJSON *c = meta->child; c; c = c->next) {
        const char *key = c->string ? c->string : "";
        if (!cJSON_IsString(c) || !c->valuestring)
            return ck_fail(err, "metadata value for key '%s' is not a string", key);
        SafetensorsMeta *m = &f->metadata[f->n_metadata];
        m->key = dup_string(key);
        m->value = dup_string(c->valuestring);
        f->n_metadata++; /* counted before the check so that close frees a partial pair */
        if (!m->key || !m->value) return ck_fail(err, "out of memory");
    }
    qsort(f->metadata, f->n_metadata, sizeof *f->metadata, compare_meta_keys);
    for (size_t i = 1; i < f->n_metadata; i++)
        if (strcmp(f->metadata[i - 1].key, f->metadata[i].key) == 0)
            return ck_fail(err, "duplicate metadata key '%s'", f->metadata[i].key);
    return 0;
}

/* Checks that the byte ranges, in offset order, tile the data buffer from 0 to its end. */
static int check_tiling(const SafetensorsFile *f, CkError *err) {
    if (f->n_tensors == 0) {
        if (f->data_size != 0)
            return ck_fail(err, "the header lists no tensors but the data buffer has %zu bytes",
                           f->data_size);
        return 0;
    }
    const SafetensorsTensor **order = malloc(f->n_tensors * sizeof *order);
    if (!order) return ck_fail(err, "out of memory");
    for (size_t i = 0; i < f->n_tensors; i++) order[i] = &f->tensors[i];
    qsort(order, f->n_tensors, sizeof *order, compare_tensor_offsets);
    size_t covered = 0;
    const SafetensorsTensor *prev = NULL;
    int rc = 0;
    for (size_t i = 0; i < f->n_tensors && rc == 0; i++) {
        const SafetensorsTensor *t = order[i];
        if (t->begin < covered)
            rc = ck_fail(err, "tensor '%s' [%zu, %zu) overlaps tensor '%s' [%zu, %zu)", t->name,
                         t->begin, t->end, prev->name, prev->begin, prev->end);
        else if (t->begin > covered)
            rc = ck_fail(err,
                         "tensor '%s' begins at byte %zu of the data buffer, leaving bytes "
                         "[%zu, %zu) unindexed (the buffer must be fully indexed)",
                         t->name, t->begin, covered, t->begin);
        covered = t->end;
        prev = t;
    }
    free(order);
    if (rc == 0 && covered != f->data_size)
        rc = ck_fail(err,
                     "the tensors end at byte %zu but the data buffer has %zu bytes (the buffer "
                     "must be fully indexed)",
                     covered, f->data_size);
    return rc;
}

static void free_tables(SafetensorsFile *f) {
    for (size_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    for (size_t i = 0; i < f->n_metadata; i++) {
        free(f->metadata[i].key);
        free(f->metadata[i].value);
    }
    free(f->metadata);
    f->tensors = NULL;
    f->metadata = NULL;
    f->n_tensors = f->n_metadata = 0;
}

static int parse_header(SafetensorsFile *f, const cJSON *root, CkError *err) {
    if (!cJSON_IsObject(root)) return ck_fail(err, "header is not a JSON object");
    int n = cJSON_GetArraySize(root);
    if (n > 0) {
        f->tensors = calloc((size_t)n, sizeof *f->tensors);
        if (!f->tensors) return ck_fail(err, "out of memory");
    }
    int seen_metadata = 0;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (!c->string) return ck_fail(err, "header entry without a name");
        if (strcmp(c->string, "__metadata__") == 0) {
            if (seen_metadata) return ck_fail(err, "duplicate key '__metadata__'");
            seen_metadata = 1;
            if (parse_metadata(f, c, err) != 0) return -1;
            continue;
        }
        SafetensorsTensor *t = &f->tensors[f->n_tensors];
        if (parse_tensor(t, c, f->data_size, err) != 0) return -1;
        t->name = dup_string(c->string);
        if (!t->name) return ck_fail(err, "out of memory");
        f->n_tensors++;
    }
    if (f->n_tensors > 1) qsort(f->tensors, f->n_tensors, sizeof *f->tensors, compare_tensor_names);
    for (size_t i = 1; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0)
            return ck_fail(err, "duplicate tensor name '%s'", f->tensors[i].name);
    return check_tiling(f, err);
}

int safetensors_parse(SafetensorsFile *f, const void *data, size_t size, CkError *err) {
    memset(f, 0, sizeof *f);
    if (size < LENGTH_BYTES)
        return ck_fail(err, "file is %zu bytes, shorter than the 8-byte header length", size);
    const unsigned char *p = data;
    uint64_t n = read_u64le(p);
    if (n > size - LENGTH_BYTES)
        return ck_fail(err,
                       "header length %llu is past the end of the file (%zu bytes follow the "
                       "length)",
                       (unsigned long long)n, size - LENGTH_BYTES);
    if (n > SAFETENSORS_MAX_HEADER)
        return ck_fail(err, "header length %llu is larger than the %zu-byte limit",
                       (unsigned long long)n, SAFETENSORS_MAX_HEADER);
    const unsigned char *header = p + LENGTH_BYTES;
    size_t header_size = (size_t)n;
    size_t bad = utf8_first_invalid((const char *)header, header_size);
    if (bad != header_size) return ck_fail(err, "header is not valid UTF-8 (byte %zu)", bad);

    /* cJSON reads up to a NUL; the header has none of its own, so give it a terminated copy
     * (the header only, never the data). A NUL inside the header then ends the JSON early and
     * is reported as trailing bytes below. */
    char *text = malloc(header_size + 1);
    if (!text) return ck_fail(err, "out of memory");
    memcpy(text, header, header_size);
    text[header_size] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 0);
    int rc = 0;
    if (!root) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        rc = ck_fail(err, "header is not valid JSON (near byte %zu)", at);
    } else {
        /* The spec allows padding after the object; JSON whitespace is all it may be. */
        for (size_t i = (size_t)(end - text); i < header_size && rc == 0; i++)
            if (!strchr(" \t\r\n", text[i]) || text[i] == '\0')
                rc = ck_fail(err, "header has bytes after the JSON value (byte %zu)", i);
    }
    if (rc == 0) {
        f->base = p;
        f->size = size;
        f->data = header + header_size;
        f->data_size = size - LENGTH_BYTES - header_size;
        rc = parse_header(f, root, err);
    }
    cJSON_Delete(root);
    free(text);
    if (rc != 0) {
        free_tables(f);
        memset(f, 0, sizeof *f);
    }
    return rc;
}

int safetensors_open(SafetensorsFile *f, const char *path, CkError *err) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ck_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ck_fail(err, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ck_fail(err, "%s: not a regular file", path);
    }
    if ((uintmax_t)st.st_size > SIZE_MAX) {
        close(fd);
        return ck_fail(err, "%s: too large to map", path);
    }
    size_t size = (size_t)st.st_size;
    if (size < LENGTH_BYTES) { /* mmap refuses length 0; the parser gives the message */
        close(fd);
        safetensors_parse(f, "", size, err);
        return ck_wrap(err, "%s", path);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd); /* the mapping keeps the file alive */
    if (map == MAP_FAILED) return ck_fail(err, "%s: cannot map: %s", path, strerror(map_errno));
    if (safetensors_parse(f, map, size, err) != 0) {
        munmap(map, size);
        return ck_wrap(err, "%s", path);
    }
    f->map = map;
    f->map_size = size;
    return 0;
}

void safetensors_close(SafetensorsFile *f) {
    if (!f) return;
    free_tables(f);
    if (f->map) munmap(f->map, f->map_size);
    memset(f, 0, sizeof *f);
}

size_t safetensors_count(const SafetensorsFile *f) {
    return f->n_tensors;
}

const SafetensorsTensor *safetensors_at(const SafetensorsFile *f, size_t i) {
    return i < f->n_tensors ? &f->tensors[i] : NULL;
}

static int compare_name_to_tensor(const void *key, const void *elem) {
    return strcmp(key, ((const SafetensorsTensor *)elem)->name);
}

const SafetensorsTensor *safetensors_find(const SafetensorsFile *f, const char *name) {
    if (!f->n_tensors) return NULL;
    return bsearch(name, f->tensors, f->n_tensors, sizeof *f->tensors, compare_name_to_tensor);
}

const void *safetensors_data(const SafetensorsFile *f, const SafetensorsTensor *t) {
    return f->data + t->begin;
}

int safetensors_read_f32(const SafetensorsFile *f, const SafetensorsTensor *t, float *dst,
                         CkError *err) {
    /* The byte range is only known to be in bounds for this file's own entries. */
    uintptr_t at = (uintptr_t)t, lo = (uintptr_t)f->tensors;
    if (!t || at < lo || at >= lo + f->n_tensors * sizeof *f->tensors)
        return ck_fail(err, "tensor is not an entry of this file");
    const unsigned char *p = f->data + t->begin;
    size_t n = t->numel;
    switch (t->dtype) {
    case ST_F32:
        for (size_t i = 0; i < n; i++) dst[i] = f32_from_bits(read_u32le(p + 4 * i));
        return 0;
    case ST_F16:
        for (size_t i = 0; i < n; i++) dst[i] = safetensors_f16_to_f32(read_u16le(p + 2 * i));
        return 0;
    case ST_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = safetensors_bf16_to_f32(read_u16le(p + 2 * i));
        return 0;
    default:
        return ck_fail(err,
                       "tensor '%s': reading %s as fp32 is not supported (only F32, F16 and "
                       "BF16)",
                       t->name, safetensors_dtype_name(t->dtype));
    }
}

static int compare_key_to_meta(const void *key, const void *elem) {
    return strcmp(key, ((const SafetensorsMeta *)elem)->key);
}

const char *safetensors_metadata(const SafetensorsFile *f, const char *key) {
    if (!f->n_metadata) return NULL;
    const SafetensorsMeta *m =
        bsearch(key, f->metadata, f->n_metadata, sizeof *f->metadata, compare_key_to_meta);
    return m ? m->value : NULL;
}

/* ---- writer ------------------------------------------------------------------------------ */

void safetensors_writer_init(SafetensorsWriter *w) {
    memset(w, 0, sizeof *w);
}

void safetensors_writer_free(SafetensorsWriter *w) {
    for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->tensors);
    for (size_t i = 0; i < w->n_metadata; i++) {
        free(w->metadata[i].key);
        free(w->metadata[i].value);
    }
    free(w->metadata);
    memset(w, 0, sizeof *w);
}

static size_t writer_elem_bytes(SafetensorsDtype dtype) {
    return dtype == ST_F32 ? 4 : 2;
}

int safetensors_writer_add(SafetensorsWriter *w, const char *name, SafetensorsDtype dtype, int ndim,
                           const size_t *shape, const float *data, CkError *err) {
    if (!name) return ck_fail(err, "tensor without a name");
    if (!is_utf8(name)) return ck_fail(err, "tensor name is not valid UTF-8");
    if (strcmp(name, "__metadata__") == 0)
        return ck_fail(err, "tensor name '__metadata__' is reserved");
    if (dtype != ST_F32 && dtype != ST_BF16 && dtype != ST_F16)
        return ck_fail(err, "tensor '%s': the writer stores F32, F16 or BF16, not %s", name,
                       safetensors_dtype_name(dtype));
    if (ndim < 0 || ndim > SAFETENSORS_WRITER_MAX_DIMS)
        return ck_fail(err, "tensor '%s': %d dimensions (the writer supports 0 to %d)", name, ndim,
                       SAFETENSORS_WRITER_MAX_DIMS);
    if (ndim > 0 && !shape) return ck_fail(err, "tensor '%s': no shape", name);
    size_t numel = 1, bytes;
    for (int i = 0; i < ndim; i++)
        if (__builtin_mul_overflow(numel, shape[i], &numel))
            return ck_fail(err, "tensor '%s': the element count overflows", name);
    if (__builtin_mul_overflow(numel, writer_elem_bytes(dtype), &bytes))
        return ck_fail(err, "tensor '%s': the byte size overflows", name);
    if (numel > 0 && !data) return ck_fail(err, "tensor '%s': no data", name);
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return ck_fail(err, "duplicate tensor name '%s'", name);
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? 2 * w->cap_tensors : 16;
        SafetensorsWriterTensor *grown = realloc(w->tensors, cap * sizeof *grown);
        if (!grown) return ck_fail(err, "out of memory");
        w->tensors = grown;
        w->cap_tensors = cap;
    }
    SafetensorsWriterTensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = dup_string(name);
    if (!t->name) return ck_fail(err, "out of memory");
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->numel = numel;
    t->data = data;
    w->n_tensors++;
    return 0;
}

int safetensors_writer_set_metadata(SafetensorsWriter *w, const char *key, const char *value,
                                    CkError *err) {
    if (!key || !value) return ck_fail(err, "metadata key and value must not be NULL");
    if (!is_utf8(key) || !is_utf8(value))
        return ck_fail(err, "metadata key or value is not valid UTF-8");
    char *v = dup_string(value);
    if (!v) return ck_fail(err, "out of memory");
    for (size_t i = 0; i < w->n_metadata; i++) {
        if (strcmp(w->metadata[i].key, key) == 0) {
            free(w->metadata[i].value);
            w->metadata[i].value = v;
            return 0;
        }
    }
    if (w->n_metadata == w->cap_metadata) {
        size_t cap = w->cap_metadata ? 2 * w->cap_metadata : 8;
        SafetensorsMeta *grown = realloc(w->metadata, cap * sizeof *grown);
        if (!grown) {
            free(v);
            return ck_fail(err, "out of memory");
        }
        w->metadata = grown;
        w->cap_metadata = cap;
    }
    char *k = dup_string(key);
    if (!k) {
        free(v);
        return ck_fail(err, "out of memory");
    }
    w->metadata[w->n_metadata].key = k;
    w->metadata[w->n_metadata].value = v;
    w->n_metadata++;
    return 0;
}

/* Appends s as a JSON string: quotes and backslashes escaped, newline, tab and carriage return
 * by their short escapes, other control characters as \u00XX; everything else (valid UTF-8,
 * checked when added) goes through unchanged. Returns 0, or -1 when out of memory. */
static int put_json_string(StrBuf *b, const char *s) {
    int rc = strbuf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p && rc == 0; p++) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            rc = strbuf_put(b, esc, 2);
        } else if (*p == '\n' || *p == '\t' || *p == '\r') {
            char esc[2] = {'\\', *p == '\n' ? 'n' : *p == '\t' ? 't' : 'r'};
            rc = strbuf_put(b, esc, 2);
        } else if (*p < 0x20) {
            rc = strbuf_printf(b, "\\u%04x", *p);
        } else {
            rc = strbuf_put(b, p, 1);
        }
    }
    return rc == 0 ? strbuf_puts(b, "\"") : rc;
}

static int compare_writer_names(const void *a, const void *b) {
    const SafetensorsWriterTensor *x = *(const SafetensorsWriterTensor *const *)a;
    const SafetensorsWriterTensor *y = *(const SafetensorsWriterTensor *const *)b;
    return strcmp(x->name, y->name);
}

/* Widest element first, so that with the data starting 8-byte aligned every tensor starts at a
 * multiple of its element size; by name within a width, for a reproducible file. */
static int compare_writer_layout(const void *a, const void *b) {
    const SafetensorsWriterTensor *x = *(const SafetensorsWriterTensor *const *)a;
    const SafetensorsWriterTensor *y = *(const SafetensorsWriterTensor *const *)b;
    size_t bx = writer_elem_bytes(x->dtype), by = writer_elem_bytes(y->dtype);
    if (bx != by) return bx > by ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int compare_meta_ptr_keys(const void *a, const void *b) {
    return strcmp((*(const SafetensorsMeta *const *)a)->key,
                  (*(const SafetensorsMeta *const *)b)->key);
}

/* Builds the padded header. offsets[i] is the begin offset of w->tensors[i]. */
static int build_header(const SafetensorsWriter *w, const size_t *offsets, StrBuf *b,
                        CkError *err) {
    /* +1: never a zero-byte allocation, so NULL always means out of memory */
    const SafetensorsWriterTensor **by_name = malloc((w->n_tensors + 1) * sizeof *by_name);
    const SafetensorsMeta **meta = malloc((w->n_metadata + 1) * sizeof *meta);
    if (!by_name || !meta) {
        free(by_name);
        free(meta);
        return ck_fail(err, "out of memory");
    }
    for (size_t i = 0; i < w->n_tensors; i++) by_name[i] = &w->tensors[i];
    qsort(by_name, w->n_tensors, sizeof *by_name, compare_writer_names);
    for (size_t i = 0; i < w->n_metadata; i++) meta[i] = &w->metadata[i];
    qsort(meta, w->n_metadata, sizeof *meta, compare_meta_ptr_keys);

    /* Each put returns 0 or -1 and leaves b as it was on failure, so OR-ing the results and
     * checking once at the end is safe. */
    int bad = strbuf_puts(b, "{");
    int first = 1;
    if (w->n_metadata) {
        bad |= strbuf_puts(b, "\"__metadata__\":{");
        for (size_t i = 0; i < w->n_metadata; i++) {
            if (i) bad |= strbuf_puts(b, ",");
            bad |= put_json_string(b, meta[i]->key);
            bad |= strbuf_puts(b, ":");
            bad |= put_json_string(b, meta[i]->value);
        }
        bad |= strbuf_puts(b, "}");
        first = 0;
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        const SafetensorsWriterTensor *t = by_name[i];
        size_t begin = offsets[t - w->tensors];
        if (!first) bad |= strbuf_puts(b, ",");
        first = 0;
        bad |= put_json_string(b, t->name);
        bad |= strbuf_printf(b, ":{\"dtype\":\"%s\",\"shape\":[", safetensors_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++)
            bad |= strbuf_printf(b, "%s%zu", d ? "," : "", t->shape[d]);
        bad |= strbuf_printf(b, "],\"data_offsets\":[%zu,", begin);
        bad |= strbuf_printf(b, "%zu]}", begin + t->numel * writer_elem_bytes(t->dtype));
    }
    bad |= strbuf_puts(b, "}");
    while (!bad && (LENGTH_BYTES + b->n) % DATA_ALIGN != 0) bad |= strbuf_puts(b, " ");
    free(by_name);
    free(meta);
    if (bad) return ck_fail(err, "out of memory");
    return 0;
}

/* Streams one tensor's values in the file's byte order through a small buffer, so that no
 * copy of the tensor is ever held. */
static int write_tensor_data(FILE *fp, const SafetensorsWriterTensor *t) {
    enum { CHUNK_BYTES = 1 << 16 };
    unsigned char buf[CHUNK_BYTES];
    size_t width = writer_elem_bytes(t->dtype), per_chunk = CHUNK_BYTES / width;
    for (size_t at = 0; at < t->numel; at += per_chunk) {
        size_t n = t->numel - at < per_chunk ? t->numel - at : per_chunk;
        const float *src = t->data + at;
        for (size_t i = 0; i < n; i++) {
            uint32_t u;
            if (t->dtype == ST_F32) {
                memcpy(&u, &src[i], sizeof u);
                buf[4 * i] = (unsigned char)u;
                buf[4 * i + 1] = (unsigned char)(u >> 8);
                buf[4 * i + 2] = (unsigned char)(u >> 16);
                buf[4 * i + 3] = (unsigned char)(u >> 24);
            } else {
                u = t->dtype == ST_F16 ? safetensors_f32_to_f16(src[i])
                                       : safetensors_f32_to_bf16(src[i]);
                buf[2 * i] = (unsigned char)u;
                buf[2 * i + 1] = (unsigned char)(u >> 8);
            }
        }
        if (fwrite(buf, width, n, fp) != n) return -1;
    }
    return 0;
}

int safetensors_write(const SafetensorsWriter *w, const char *path, CkError *err) {
    /* The data order, and each tensor's offset in it (indexed like w->tensors). */
    size_t *offsets = malloc((w->n_tensors + 1) * sizeof *offsets);
    const SafetensorsWriterTensor **layout = malloc((w->n_tensors + 1) * sizeof *layout);
    if (!offsets || !layout) {
        free(offsets);
        free(layout);
        return ck_fail(err, "out of memory");
    }
    for (size_t i = 0; i < w->n_tensors; i++) layout[i] = &w->tensors[i];
    qsort(layout, w->n_tensors, sizeof *layout, compare_writer_layout);
    size_t total = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        offsets[layout[i] - w->tensors] = total;
        size_t bytes = layout[i]->numel * writer_elem_bytes(layout[i]->dtype); /* checked */
        if (__builtin_add_overflow(total, bytes, &total)) {
            free(offsets);
            free(layout);
            return ck_fail(err, "%s: the tensors' total size overflows", path);
        }
    }
    StrBuf header = {0};
    if (build_header(w, offsets, &header, err) != 0) {
        free(offsets);
        free(layout);
        strbuf_free(&header);
        return ck_wrap(err, "%s", path);
    }
    free(offsets);
    /* Through the one atomic path (util/fileio.h): a reader sees the old file or the whole
     * new one. */
    AtomicFile a;
    int rc = atomic_file_open(&a, path, err);
    if (rc == 0) {
        unsigned char len[LENGTH_BYTES];
        uint64_t n = header.n;
        for (int i = 0; i < LENGTH_BYTES; i++) len[i] = (unsigned char)(n >> (8 * i));
        int ok = fwrite(len, 1, sizeof len, a.f) == sizeof len &&
                 fwrite(header.p, 1, header.n, a.f) == header.n;
        for (size_t i = 0; ok && i < w->n_tensors; i++) ok = write_tensor_data(a.f, layout[i]) == 0;
        if (ok) ok = fflush(a.f) == 0;
        if (ok) {
            rc = atomic_file_commit(&a, err);
        } else {
            /* errno still says why (a full disk, the file size limit), which commit would
             * no longer know */
            rc = ck_fail(err, "%s: cannot write: %s", path, strerror(errno));
            atomic_file_abort(&a);
        }
    }
    free(layout);
    strbuf_free(&header);
    return rc;
}

void safetensors_release_pages(const SafetensorsFile *f, const SafetensorsTensor *t) {
    if (!f->map || t->end <= t->begin) return;
    /* only whole pages inside the tensor: a neighbour's bytes stay resident */
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t begin = (uintptr_t)(f->data + t->begin), end = (uintptr_t)(f->data + t->end);
    begin = (begin + page - 1) / page * page;
    end = end / page * page;
    if (end > begin) (void)madvise((void *)begin, end - begin, MADV_DONTNEED);
}
