/* llama2c.c — reading llama2.c checkpoints, and writing the legacy version 0.
 *
 * Three layouts exist. Version 0 (legacy): 7 int32 (dim, hidden_dim, n_layers, n_heads,
 * n_kv_heads, vocab_size, seq_len; a negative vocab_size means the classifier is not shared),
 * then fp32 tensors in our own parameter order, then two RoPE tables that we skip (we derive
 * them), then the classifier if not shared. Versions 1 and 2 (export.py): a 256-byte header
 * (magic "ak42", version, the 7 ints, a shared-classifier byte, and for version 2 the Q8_0
 * group size), then the norms first; version 2 stores the matrices as int8 with one fp32
 * scale per group, all int8 data first and all scales after. */
#include "formats/llama2c.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fileio.h"

#define LLAMA2C_MAGIC       0x616b3432u
#define LLAMA2C_HEADER_SIZE 256

static int32_t read_i32(const unsigned char *p) {
    int32_t v;
    memcpy(&v, p, sizeof v); /* unaligned-safe; files are little-endian like this CPU */
    return v;
}

/* Copies `count` floats at byte offset *pos of data into dst and advances *pos. The caller
 * has already checked the total size, so this cannot run past the end. */
static void take_floats(float *dst, const unsigned char *data, size_t *pos, size_t count) {
    memcpy(dst, data + *pos, count * sizeof(float));
    *pos += count * sizeof(float);
}

static void config_from_header(ModelConfig *c, const unsigned char *h) {
    memset(c, 0, sizeof *c);
    c->dim = read_i32(h);
    c->hidden_dim = read_i32(h + 4);
    c->n_layers = read_i32(h + 8);
    c->n_heads = read_i32(h + 12);
    c->n_kv_heads = read_i32(h + 16);
    c->vocab_size = read_i32(h + 20);
    c->seq_len = read_i32(h + 24);
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->rope_style = ROPE_INTERLEAVED;
}

static int size_mismatch(CkError *err, size_t size, size_t expected, const ModelConfig *c) {
    return ck_fail(err,
                   "file is %zu bytes but its header (dim %d, hidden_dim %d, n_layers %d, "
                   "n_heads %d, n_kv_heads %d, vocab_size %d, seq_len %d) implies %zu bytes: %s",
                   size, c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                   c->vocab_size, c->seq_len, expected,
                   size < expected ? "truncated" : "oversized");
}

/* Matrices in the order export.py writes them (versions 1 and 2), after the norms. */
static const ParamId MATRIX_ORDER[] = {PARAM_TOKEN_EMBEDDING,
                                       PARAM_WQ,
                                       PARAM_WK,
                                       PARAM_WV,
                                       PARAM_WO,
                                       PARAM_W1,
                                       PARAM_W2,
                                       PARAM_W3,
                                       PARAM_WCLS};
#define N_MATRICES (sizeof MATRIX_ORDER / sizeof MATRIX_ORDER[0])

static int load_v0(Model *m, const unsigned char *data, size_t size, CkError *err) {
    ModelConfig c;
    config_from_header(&c, data);
    /* the sign says whether the classifier is shared; INT_MIN has no positive counterpart
     * (negating it overflows), and no vocabulary is that large anyway */
    if (c.vocab_size == INT32_MIN)
        return ck_fail(err, "header: vocab_size %d is out of range", (int)c.vocab_size);
    c.shared_classifier = c.vocab_size > 0;
    if (c.vocab_size < 0) c.vocab_size = -c.vocab_size;
    if (model_config_validate(&c, err) != 0) return -1;
    ParamTensor t[PARAM_COUNT];
    size_t n_params = model_param_layout(&c, t);
    size_t rope_floats = (size_t)c.seq_len * (size_t)(c.dim / c.n_heads / 2) * 2;
    size_t expected = 28 + (n_params + rope_floats) * sizeof(float);
    if (size != expected) return size_mismatch(err, size, expected, &c);
    if (model_init(m, &c, err) != 0) return -1;
    size_t pos = 28;
    /* Our parameter order is version 0's, up to the RoPE tables. */
    size_t before_rope = t[PARAM_WCLS].offset;
    take_floats(m->params, data, &pos, before_rope);
    pos += rope_floats * sizeof(float);
    take_floats(m->params + t[PARAM_WCLS].offset, data, &pos, t[PARAM_WCLS].size);
    return 0;
}

static int load_v1_v2(Model *m, const unsigned char *data, size_t size, int version, CkError *err) {
    if (size < LLAMA2C_HEADER_SIZE)
        return ck_fail(err, "truncated header: %zu bytes, a version-%d header has %d", size,
                       version, LLAMA2C_HEADER_SIZE);
    ModelConfig c;
    config_from_header(&c, data + 8);
    c.shared_classifier = data[36] != 0;
    if (model_config_validate(&c, err) != 0) return -1;
    ParamTensor t[PARAM_COUNT];
    model_param_layout(&c, t);
    size_t norms = t[PARAM_RMS_ATT].size + t[PARAM_RMS_FFN].size + t[PARAM_RMS_FINAL].size;
    size_t matrices = 0;
    for (size_t i = 0; i < N_MATRICES; i++) matrices += t[MATRIX_ORDER[i]].size;
    int group = 0;
    size_t expected;
    if (version == 1) {
        expected = LLAMA2C_HEADER_SIZE + (norms + matrices) * sizeof(float);
    } else {
        group = read_i32(data + 37);
        if (group <= 0) return ck_fail(err, "version-2 group size %d is not positive", group);
        for (size_t i = 0; i < N_MATRICES; i++)
            if (t[MATRIX_ORDER[i]].size % (size_t)group != 0)
                return ck_fail(err, "tensor %s has %zu values, not a multiple of group size %d",
                               t[MATRIX_ORDER[i]].name, t[MATRIX_ORDER[i]].size, group);
        expected = LLAMA2C_HEADER_SIZE + norms * sizeof(float) + matrices +
                   matrices / (size_t)group * sizeof(float);
    }
    if (size != expected) return size_mismatch(err, size, expected, &c);
    if (model_init(m, &c, err) != 0) return -1;

    size_t pos = LLAMA2C_HEADER_SIZE;
    take_floats(model_param(m, PARAM_RMS_ATT, 0), data, &pos, t[PARAM_RMS_ATT].size);
    take_floats(model_param(m, PARAM_RMS_FFN, 0), data, &pos, t[PARAM_RMS_FFN].size);
    take_floats(model_param(m, PARAM_RMS_FINAL, 0), data, &pos, t[PARAM_RMS_FINAL].size);
    if (version == 1) {
        for (size_t i = 0; i < N_MATRICES; i++)
            take_floats(m->params + t[MATRIX_ORDER[i]].offset, data, &pos, t[MATRIX_ORDER[i]].size);
        return 0;
    }
    /* Q8_0: value = int8 * scale of its group; groups run over the concatenated matrices, and
     * no group straddles two tensors since every size is a multiple of the group size. */
    const int8_t *q = (const int8_t *)(data + pos);
    const unsigned char *scales = data + pos + matrices;
    size_t qi = 0;
    for (size_t i = 0; i < N_MATRICES; i++) {
        float *dst = m->params + t[MATRIX_ORDER[i]].offset;
        for (size_t j = 0; j < t[MATRIX_ORDER[i]].size; j++, qi++) {
            float scale;
            memcpy(&scale, scales + (qi / (size_t)group) * sizeof(float), sizeof scale);
            dst[j] = (float)q[qi] * scale;
        }
    }
    return 0;
}

int llama2c_load(Model *m, const void *data, size_t size, CkError *err) {
    memset(m, 0, sizeof *m);
    const unsigned char *bytes = data;
    if (size < 28)
        return ck_fail(err, "truncated header: %zu bytes, a llama2.c checkpoint has at least 28",
                       size);
    uint32_t magic;
    memcpy(&magic, bytes, sizeof magic);
    if (magic != LLAMA2C_MAGIC) return load_v0(m, bytes, size, err);
    int version = read_i32(bytes + 4);
    if (version != 1 && version != 2)
        return ck_fail(err, "unsupported llama2.c checkpoint version %d (cutkit reads 0, 1, 2)",
                       version);
    return load_v1_v2(m, bytes, size, version, err);
}

int llama2c_load_file(Model *m, const char *path, CkError *err) {
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ck_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ck_fail(err, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    if (size == 0) {
        close(fd);
        return ck_fail(err, "%s: empty file, not a llama2.c checkpoint", path);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return ck_fail(err, "%s: cannot map: %s", path, strerror(errno));
    int rc = llama2c_load(m, map, size, err);
    munmap(map, size);
    if (rc != 0) return ck_wrap(err, "%s", path);
    return 0;
}

/* fwrite that remembers the first failure, so the writer checks once at the end. */
static void put(FILE *f, const void *data, size_t bytes, int *ok) {
    if (*ok && fwrite(data, 1, bytes, f) != bytes) *ok = 0;
}

int llama2c_save(const Model *m, const char *path, CkError *err) {
    const ModelConfig *c = &m->config;
    if (model_require_f32(m, "llama2.c export", err) != 0) return -1;
    if (!model_is_llama2(m)) /* the format has no place for rope scaling, biases, norms... */
        return ck_fail(err,
                       "%s: a llama2.c checkpoint holds only the Llama-2 architecture; this "
                       "model has another family's options (keep it as a Hugging Face folder)",
                       path);
    if (c->rope_style != ROPE_INTERLEAVED)
        return ck_fail(err, "%s: a llama2.c checkpoint needs the interleaved rotary convention",
                       path);
    AtomicFile a;
    if (atomic_file_open(&a, path, err) != 0) return -1;
    int ok = 1;
    const int32_t header[7] = {c->dim,        c->hidden_dim,
                               c->n_layers,   c->n_heads,
                               c->n_kv_heads, c->shared_classifier ? c->vocab_size : -c->vocab_size,
                               c->seq_len};
    put(a.f, header, sizeof header, &ok);
    put(a.f, m->params, m->tensors[PARAM_WCLS].offset * sizeof(float), &ok);
    /* the legacy RoPE tables: cos then sin of pos * theta^(-2i/hs), (seq_len, hs/2) each */
    const int half = c->dim / c->n_heads / 2;
    for (int table = 0; table < 2; table++)
        put(a.f, table ? m->rope_sin : m->rope_cos, (size_t)c->seq_len * half * sizeof(float), &ok);
    put(a.f, m->params + m->tensors[PARAM_WCLS].offset, m->tensors[PARAM_WCLS].size * sizeof(float),
        &ok);
    if (!ok) {
        ck_fail(err, "%s: cannot write: %s", path, strerror(errno));
        atomic_file_abort(&a);
        return -1;
    }
    return atomic_file_commit(&a, err);
}
