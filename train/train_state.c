/* train_state.c — see train_state.h. */
#include "train/train_state.h"

#include "util/fileio.h"
#include "util/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The format is little endian and written straight from memory, floats included. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "train_state.c writes its file from memory and needs a little-endian host"
#endif

static const char MAGIC[8] = {'C', 'K', 'T', 'S', 'T', 'A', 'T', 'E'};
enum {
    HEADER_BYTES = 32,   /* magic, version, reserved, size, checksum */
    CHECKED_FROM = 32,   /* the checksum covers the file from here on */
    FIXED_BYTES = 160,   /* everything before the description */
    SEGMENT_BYTES = 24,  /* begin, end, decay */
    RNG_BYTES = 32,      /* four words */
    MAX_SEGMENTS = 4096, /* far more than any decay mask needs */
};

/* ---- layouts ---------------------------------------------------------------------------- */

static uint64_t hash_u64(uint64_t h, uint64_t x) {
    return hash_fnv1a64(h, &x, sizeof x);
}

static uint64_t hash_str(uint64_t h, const char *s) {
    /* the terminating NUL keeps "ab"+"c" apart from "a"+"bc" */
    return hash_fnv1a64(h, s, strlen(s) + 1);
}

/* The family's options, field by field (a struct's padding bytes are not data). */
static uint64_t hash_arch(uint64_t h, const ModelArch *a) {
    const double v[] = {a->family,
                        a->head_dim,
                        a->rope_scaling,
                        a->rope_factor,
                        a->rope_low_freq,
                        a->rope_high_freq,
                        a->rope_original_len,
                        a->qkv_bias,
                        a->qk_norm,
                        a->sliding_window,
                        a->sliding_alternate,
                        a->norm_plus_one,
                        a->embed_scale,
                        a->act,
                        a->attn_scale,
                        a->attn_softcap,
                        a->final_softcap,
                        a->sandwich_norms};
    return hash_fnv1a64(h, v, sizeof v);
}

static const char *rope_name(RopeStyle s) {
    return s == ROPE_INTERLEAVED ? "interleaved" : "half-split";
}

void train_layout_model(TrainLayout *l, const Model *m) {
    const ModelConfig *c = &m->config;
    uint64_t h = hash_str(HASH_FNV1A64_OFFSET, "model");
    const int shape[] = {c->dim,        c->hidden_dim, c->n_layers,          c->n_heads,
                         c->n_kv_heads, c->vocab_size, c->shared_classifier, (int)c->rope_style};
    for (size_t i = 0; i < sizeof shape / sizeof shape[0]; i++) h = hash_u64(h, (uint64_t)shape[i]);
    for (int i = 0; i < PARAM_COUNT; i++) {
        /* the families' tensors (after the classifier) count only when present, so a Llama
         * state saved before they existed still matches */
        if (i > PARAM_WCLS && m->tensors[i].size == 0) continue;
        h = hash_str(h, m->tensors[i].name);
        h = hash_u64(h, m->tensors[i].offset);
        h = hash_u64(h, m->tensors[i].size);
    }
    if (!model_is_llama2(m)) h = hash_arch(h, &m->arch);
    l->hash = h;
    l->n_params = m->n_params;
    snprintf(l->desc, sizeof l->desc,
             "a model of dim %d, hidden %d, %d layers, %d/%d heads, vocab %d, %s classifier, %s "
             "rope",
             c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size,
             c->shared_classifier ? "tied" : "separate", rope_name(c->rope_style));
}

void train_layout_lora(TrainLayout *l, const LoraAdapters *ad) {
    uint64_t h = hash_str(HASH_FNV1A64_OFFSET, "lora");
    const int shape[] = {ad->config.rank, (int)ad->config.target_mask,
                         ad->n_layers,    ad->dim,
                         ad->hidden_dim,  ad->kv_dim};
    for (size_t i = 0; i < sizeof shape / sizeof shape[0]; i++) h = hash_u64(h, (uint64_t)shape[i]);
    for (int i = 0; i < ad->n_tensors; i++) {
        h = hash_str(h, ad->tensors[i].name);
        h = hash_u64(h, ad->tensors[i].offset);
        h = hash_u64(h, ad->tensors[i].size);
    }
    l->hash = h;
    l->n_params = ad->n_params;
    char targets[120] = "";
    for (int mod = 0; mod < LORA_MODULES; mod++) {
        if (!(ad->config.target_mask & LORA_BIT(mod))) continue;
        if (targets[0]) strncat(targets, ",", sizeof targets - strlen(targets) - 1);
        strncat(targets, lora_module_name((LoraModule)mod), sizeof targets - strlen(targets) - 1);
    }
    snprintf(l->desc, sizeof l->desc, "LoRA rank %d on %s, %d layers (dim %d, hidden %d, kv %d)",
             ad->config.rank, targets, ad->n_layers, ad->dim, ad->hidden_dim, ad->kv_dim);
}

/* ---- saving ----------------------------------------------------------------------------- */

typedef struct {
    FILE *f;
    uint64_t hash; /* FNV-1a of what was written from CHECKED_FROM on */
    uint64_t written;
    int ok;
} Out;

static void put(Out *o, const void *data, size_t size) {
    if (!o->ok || size == 0) return;
    if (fwrite(data, 1, size, o->f) != size) o->ok = 0;
    if (o->written >= CHECKED_FROM) {
        o->hash = hash_fnv1a64(o->hash, data, size);
    } else if (o->written + size > CHECKED_FROM) {
        const size_t skip = CHECKED_FROM - (size_t)o->written;
        o->hash = hash_fnv1a64(o->hash, (const char *)data + skip, size - skip);
    }
    o->written += size;
}

static void put_u32(Out *o, uint32_t x) {
    put(o, &x, sizeof x);
}

static void put_u64(Out *o, uint64_t x) {
    put(o, &x, sizeof x);
}

static void put_f64(Out *o, double x) {
    put(o, &x, sizeof x);
}

static size_t pad8(size_t n) {
    return (n + 7) & ~(size_t)7;
}

int train_state_save(const char *path, const TrainState *ts, const TrainLayout *layout,
                     const AdamW *opt, CkError *err) {
    if (opt->n != layout->n_params || !opt->m || !opt->v)
        return ck_fail(err, "%s: the optimizer holds %zu parameters, the layout %zu", path, opt->n,
                       layout->n_params);
    if (ts->n_rngs < 0 || ts->n_rngs > TRAIN_STATE_MAX_RNGS || ts->n_cursor < 0 ||
        ts->n_cursor > TRAIN_STATE_MAX_CURSOR)
        return ck_fail(err, "%s: %d RNG states and %d cursor words exceed the limits (%d, %d)",
                       path, ts->n_rngs, ts->n_cursor, TRAIN_STATE_MAX_RNGS,
                       TRAIN_STATE_MAX_CURSOR);
    const size_t desc_len = strnlen(layout->desc, sizeof layout->desc - 1);
    const uint64_t total = FIXED_BYTES + pad8(desc_len) + opt->n_segments * SEGMENT_BYTES +
                           (uint64_t)ts->n_rngs * RNG_BYTES + (uint64_t)ts->n_cursor * 8 +
                           (uint64_t)opt->n * 8;

    AtomicFile a;
    if (atomic_file_open(&a, path, err) != 0) return -1;
    Out o = {a.f, HASH_FNV1A64_OFFSET, 0, 1};
    put(&o, MAGIC, sizeof MAGIC);
    put_u32(&o, TRAIN_STATE_VERSION);
    put_u32(&o, 0);
    put_u64(&o, total);
    put_u64(&o, 0); /* the checksum, filled in once everything after it has been hashed */
    put_u64(&o, layout->hash);
    put_u64(&o, opt->n);
    put_u64(&o, (uint64_t)ts->step);
    put_u64(&o, (uint64_t)ts->epoch);
    const Schedule *s = &ts->schedule;
    put_u32(&o, (uint32_t)s->kind);
    put_u32(&o, (uint32_t)s->first_step_lr_zero);
    put_f64(&o, s->lr);
    put_u64(&o, (uint64_t)s->warmup_steps);
    put_u64(&o, (uint64_t)s->total_steps);
    put_f64(&o, s->num_cycles);
    put_f64(&o, opt->config.beta1);
    put_f64(&o, opt->config.beta2);
    put_f64(&o, opt->config.eps);
    put_f64(&o, opt->config.weight_decay);
    put_u64(&o, (uint64_t)opt->step);
    put_u32(&o, (uint32_t)desc_len);
    put_u32(&o, (uint32_t)opt->n_segments);
    put_u32(&o, (uint32_t)ts->n_rngs);
    put_u32(&o, (uint32_t)ts->n_cursor);
    const char zeros[8] = {0};
    put(&o, layout->desc, desc_len);
    put(&o, zeros, pad8(desc_len) - desc_len);
    for (size_t i = 0; i < opt->n_segments; i++) {
        put_u64(&o, opt->segments[i].begin);
        put_u64(&o, opt->segments[i].end);
        put_u64(&o, (uint64_t)opt->segments[i].decay);
    }
    for (int i = 0; i < ts->n_rngs; i++)
        for (int w = 0; w < 4; w++) put_u64(&o, ts->rngs[i].s[w]);
    for (int i = 0; i < ts->n_cursor; i++) put_u64(&o, (uint64_t)ts->cursor[i]);
    put(&o, opt->m, opt->n * sizeof *opt->m);
    put(&o, opt->v, opt->n * sizeof *opt->v);
    /* the checksum goes into the header once everything after it has been hashed */
    if (!o.ok || o.written != total || fseek(a.f, 24, SEEK_SET) != 0 ||
        fwrite(&o.hash, 8, 1, a.f) != 1) {
        ck_fail(err, "%s: cannot write: %s", path, strerror(errno ? errno : EIO));
        atomic_file_abort(&a);
        return -1;
    }
    return atomic_file_commit(&a, err);
}

/* ---- loading ---------------------------------------------------------------------------- */

typedef struct {
    const unsigned char *p;
    size_t left;
} In;

static int get(In *in, void *dst, size_t size) {
    if (in->left < size) return -1;
    memcpy(dst, in->p, size);
    in->p += size;
    in->left -= size;
    return 0;
}

static uint32_t get_u32(In *in, int *bad) {
    uint32_t x = 0;
    if (get(in, &x, sizeof x) != 0) *bad = 1;
    return x;
}

static uint64_t get_u64(In *in, int *bad) {
    uint64_t x = 0;
    if (get(in, &x, sizeof x) != 0) *bad = 1;
    return x;
}

static double get_f64(In *in, int *bad) {
    double x = 0;
    if (get(in, &x, sizeof x) != 0) *bad = 1;
    return x;
}

/* Copies a description from the file into buf as printable ASCII, so that a hostile file
 * cannot put control characters into a message. */
static void clean_desc(char *buf, size_t cap, const unsigned char *p, size_t len) {
    size_t n = len < cap - 1 ? len : cap - 1;
    for (size_t i = 0; i < n; i++) buf[i] = (p[i] >= 32 && p[i] < 127) ? (char)p[i] : '?';
    buf[n] = '\0';
}

/* Counters past 2^53 no run reaches (and a double no longer holds them exactly); refusing
 * them keeps every later increment (of the step, the epoch, AdamW's counter) and the schedule's
 * differences far inside int64. */
static int check_counters(const char *path, const TrainState *ts, int64_t opt_step, CkError *err) {
    const int64_t limit = (int64_t)1 << 53;
    const struct {
        const char *name;
        int64_t value;
    } counters[] = {{"step", ts->step},
                    {"epoch", ts->epoch},
                    {"optimizer step", opt_step},
                    {"warmup steps", ts->schedule.warmup_steps},
                    {"total steps", ts->schedule.total_steps}};
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++)
        if (counters[i].value > limit)
            return ck_fail(err, "%s: corrupt train state: the %s %lld is beyond 2^53", path,
                           counters[i].name, (long long)counters[i].value);
    return 0;
}

/* Validates the checksummed image and fills the outputs; the image is known to be `size`
 * bytes with a matching header and checksum. */
static int parse(const char *path, const unsigned char *base, size_t size, TrainState *ts,
                 const TrainLayout *layout, AdamWConfig *cfg, int64_t *opt_step,
                 AdamWSegment **segments, size_t *n_segments, const unsigned char **mv,
                 CkError *err) {
    In in = {base + CHECKED_FROM, size - CHECKED_FROM};
    int bad = 0;
    const uint64_t hash = get_u64(&in, &bad);
    const uint64_t n = get_u64(&in, &bad);
    ts->step = (int64_t)get_u64(&in, &bad);
    ts->epoch = (int64_t)get_u64(&in, &bad);
    Schedule *s = &ts->schedule;
    s->kind = (ScheduleKind)get_u32(&in, &bad);
    s->first_step_lr_zero = (int)get_u32(&in, &bad);
    s->lr = get_f64(&in, &bad);
    s->warmup_steps = (int64_t)get_u64(&in, &bad);
    s->total_steps = (int64_t)get_u64(&in, &bad);
    s->num_cycles = get_f64(&in, &bad);
    cfg->beta1 = get_f64(&in, &bad);
    cfg->beta2 = get_f64(&in, &bad);
    cfg->eps = get_f64(&in, &bad);
    cfg->weight_decay = get_f64(&in, &bad);
    *opt_step = (int64_t)get_u64(&in, &bad);
    const uint32_t desc_len = get_u32(&in, &bad), n_seg = get_u32(&in, &bad);
    const uint32_t n_rngs = get_u32(&in, &bad), n_cursor = get_u32(&in, &bad);
    if (bad) return ck_fail(err, "%s: corrupt train state: %zu bytes, too short", path, size);
    if (desc_len >= sizeof layout->desc || in.left < pad8(desc_len))
        return ck_fail(err, "%s: corrupt train state: bad layout description length %u", path,
                       desc_len);
    char saved_desc[sizeof layout->desc];
    clean_desc(saved_desc, sizeof saved_desc, in.p, desc_len);
    in.p += pad8(desc_len);
    in.left -= pad8(desc_len);
    if (hash != layout->hash || n != layout->n_params) {
        if (strcmp(saved_desc, layout->desc) != 0 || n != layout->n_params)
            return ck_fail(err,
                           "%s: saved for %s (%llu parameters), but this run trains %s (%zu "
                           "parameters); resume with the same model and adapter settings",
                           path, saved_desc, (unsigned long long)n, layout->desc, layout->n_params);
        return ck_fail(err,
                       "%s: saved for %s with another tensor layout (fingerprint %016llx, this "
                       "run %016llx); resume with the same model and adapter settings",
                       path, saved_desc, (unsigned long long)hash,
                       (unsigned long long)layout->hash);
    }
    if (ts->step < 0 || ts->epoch < 0 || *opt_step < 0)
        return ck_fail(err, "%s: corrupt train state: negative step or epoch", path);
    if (check_counters(path, ts, *opt_step, err) != 0) return -1;
    if (schedule_validate(s, err) != 0 || adamw_config_validate(cfg, err) != 0)
        return ck_wrap(err, "%s: corrupt train state", path);
    if (n_rngs > TRAIN_STATE_MAX_RNGS || n_cursor > TRAIN_STATE_MAX_CURSOR ||
        n_seg > MAX_SEGMENTS || n_seg == 0)
        return ck_fail(err, "%s: corrupt train state: %u RNGs, %u cursor words, %u segments", path,
                       n_rngs, n_cursor, n_seg);
    /* everything left is fixed by the counts: check it before reading any of it */
    const uint64_t rest =
        (uint64_t)n_seg * SEGMENT_BYTES + (uint64_t)n_rngs * RNG_BYTES + (uint64_t)n_cursor * 8;
    if (in.left < rest || (in.left - rest) / 8 != n || (in.left - rest) % 8 != 0)
        return ck_fail(err, "%s: corrupt train state: %zu bytes remain where the counts need %llu",
                       path, in.left, (unsigned long long)(rest + 8 * n));
    AdamWSegment *seg = malloc(n_seg * sizeof *seg);
    if (!seg) return ck_fail(err, "%s: out of memory", path);
    uint64_t expect = 0;
    for (uint32_t i = 0; i < n_seg; i++) {
        seg[i].begin = get_u64(&in, &bad);
        seg[i].end = get_u64(&in, &bad);
        const uint64_t decay = get_u64(&in, &bad);
        seg[i].decay = (int)decay;
        if (seg[i].begin != expect || seg[i].end <= seg[i].begin || seg[i].end > n || decay > 1)
            bad = 1;
        expect = seg[i].end;
    }
    if (bad || expect != n) {
        free(seg);
        return ck_fail(err, "%s: corrupt train state: the decay segments do not tile %llu floats",
                       path, (unsigned long long)n);
    }
    ts->n_rngs = (int)n_rngs;
    for (uint32_t i = 0; i < n_rngs; i++)
        for (int w = 0; w < 4; w++) ts->rngs[i].s[w] = get_u64(&in, &bad);
    ts->n_cursor = (int)n_cursor;
    for (uint32_t i = 0; i < n_cursor; i++) ts->cursor[i] = (int64_t)get_u64(&in, &bad);
    *segments = seg;
    *n_segments = n_seg;
    *mv = in.p;
    return 0;
}

/* Checks magic, version, size and checksum of the image; returns 0 or -1 with err set. */
static int check_header(const char *path, const unsigned char *base, size_t size, CkError *err) {
    if (size >= sizeof MAGIC && memcmp(base, MAGIC, sizeof MAGIC) != 0)
        return ck_fail(err, "%s: not a cutkit train state (bad magic)", path);
    if (size < HEADER_BYTES)
        return ck_fail(err, "%s: truncated train state: %zu bytes, less than the %d-byte header",
                       path, size, HEADER_BYTES);
    uint32_t version = 0;
    uint64_t total = 0, stored = 0;
    memcpy(&version, base + 8, 4);
    memcpy(&total, base + 16, 8);
    memcpy(&stored, base + 24, 8);
    if (version != TRAIN_STATE_VERSION)
        return ck_fail(err, "%s: train state version %u is not supported (this build reads %d)",
                       path, version, TRAIN_STATE_VERSION);
    if (size < total)
        return ck_fail(err, "%s: truncated train state: %zu of %llu bytes", path, size,
                       (unsigned long long)total);
    if (size > total)
        return ck_fail(err, "%s: corrupt train state: %zu bytes, %llu expected", path, size,
                       (unsigned long long)total);
    const uint64_t h = hash_fnv1a64(HASH_FNV1A64_OFFSET, base + CHECKED_FROM, size - CHECKED_FROM);
    if (h != stored)
        return ck_fail(err, "%s: corrupt train state: checksum %016llx, stored %016llx", path,
                       (unsigned long long)h, (unsigned long long)stored);
    return 0;
}

int train_state_read(const void *data, size_t size, const char *path, TrainState *ts,
                     const TrainLayout *layout, AdamW *opt, CkError *err) {
    if (opt->n != layout->n_params || !opt->m || !opt->v)
        return ck_fail(err, "%s: the optimizer holds %zu parameters, the layout %zu", path, opt->n,
                       layout->n_params);
    const unsigned char *base = data;
    if (check_header(path, base, size, err) != 0) return -1;
    /* parse into copies, so that a refusal leaves the caller's state as it was */
    TrainState *loaded = calloc(1, sizeof *loaded);
    if (!loaded) return ck_fail(err, "%s: out of memory", path);
    AdamWConfig cfg;
    int64_t opt_step = 0;
    AdamWSegment *segments = NULL;
    size_t n_segments = 0;
    const unsigned char *mv = NULL;
    int rc =
        parse(path, base, size, loaded, layout, &cfg, &opt_step, &segments, &n_segments, &mv, err);
    if (rc == 0) {
        *ts = *loaded;
        opt->config = cfg;
        opt->step = opt_step;
        free(opt->segments);
        opt->segments = segments;
        opt->n_segments = n_segments;
        memcpy(opt->m, mv, opt->n * sizeof *opt->m);
        memcpy(opt->v, mv + opt->n * sizeof *opt->m, opt->n * sizeof *opt->v);
    }
    free(loaded);
    return rc;
}

int train_state_load(const char *path, TrainState *ts, const TrainLayout *layout, AdamW *opt,
                     CkError *err) {
    if (opt->n != layout->n_params || !opt->m || !opt->v)
        return ck_fail(err, "%s: the optimizer holds %zu parameters, the layout %zu", path, opt->n,
                       layout->n_params);
    const int fd = open(path, O_RDONLY);
    if (fd < 0) return ck_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ck_fail(err, "%s: not a regular file", path);
    }
    const size_t size = (size_t)st.st_size;
    void *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            const int saved = errno;
            close(fd);
            return ck_fail(err, "%s: cannot map: %s", path, strerror(saved));
        }
    }
    close(fd);
    int rc = train_state_read(map, size, path, ts, layout, opt, err);
    if (map) munmap(map, size);
    return rc;
}
