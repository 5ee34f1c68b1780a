/* test_train_state.c — the train state file (round trip bit for bit; truncated, corrupt,
 * hostile and foreign files refused with their messages; layouts told apart) and the
 * checkpoint directory protocol (.tmp leftovers ignored, latest, pruning, failures that leave
 * the previous checkpoint, the same step saved twice, exact resume of optimizer runs). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/test_util.h"

#include "train/checkpoint.h"
#include "formats/hf_model.h"
#include "model/lora.h"
#include "model/model.h"
#include "train/optim.h"
#include "formats/peft.h"
#include "util/rng.h"
#include "train/schedule.h"
#include "util/hash.h"
#include "util/threads.h"
#include "train/train_state.h"

static char *tmp;
static Model model; /* a tiny model: dim 16, hidden 24, 2 layers */

static int setup(void **state) {
    (void)state;
    tmp = test_temp_dir();
    ModelConfig mc = {16, 24, 2, 4, 2, 32, 16, 1e-5f, 10000.0f, ROPE_HALF_SPLIT, 0};
    CkError err = {{0}};
    if (!tmp || model_init(&model, &mc, &err) != 0) return -1;
    Rng r;
    rng_seed(&r, 99);
    for (size_t i = 0; i < model.n_params; i++) model.params[i] = rng_float(&r) - 0.5f;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    model_free(&model);
    int rc = test_remove_dir(tmp);
    free(tmp);
    return rc;
}

static char *path_in(const char *name) {
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", tmp, name);
    return p;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* LoRA adapters of rank r on q_proj and v_proj of the tiny model. */
static void make_lora(LoraAdapters *ad, int rank) {
    LoraConfig c = {rank, 8.0f, 0.0f, LORA_BIT(LORA_Q) | LORA_BIT(LORA_V)};
    CkError err = {{0}};
    assert_int_equal(lora_init(ad, &model, &c, 1, &err), 0);
}

/* An optimizer with some history and a trainer state with every field set. */
static void make_state(AdamW *opt, TrainState *ts, size_t n, uint64_t seed) {
    CkError err = {{0}};
    AdamWConfig c = {0.85, 0.995, 1e-7, 0.05};
    assert_int_equal(adamw_init(opt, n, &c, &err), 0);
    assert_int_equal(adamw_set_decay(opt, 10, 20, 0, &err), 0);
    Rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        opt->m[i] = rng_float(&r) - 0.5f;
        opt->v[i] = rng_float(&r) * 1e-3f;
    }
    opt->m[0] = -0.0f; /* bit patterns that a lossy format would lose */
    opt->v[1] = 1e-42f;
    opt->step = 17;
    memset(ts, 0, sizeof *ts);
    ts->step = 17;
    ts->epoch = 2;
    ts->schedule = schedule_make(SCHED_COSINE, 3e-4, 5, 100);
    ts->schedule.first_step_lr_zero = 0;
    ts->n_rngs = 3;
    for (int i = 0; i < 3; i++) {
        rng_seed(&ts->rngs[i], seed + (uint64_t)i);
        for (int k = 0; k <= i; k++) rng_next(&ts->rngs[i]);
    }
    ts->n_cursor = 2;
    ts->cursor[0] = 123456789012345;
    ts->cursor[1] = -7;
}

static void test_round_trip(void **state) {
    (void)state;
    LoraAdapters ad;
    make_lora(&ad, 4);
    TrainLayout layout;
    train_layout_lora(&layout, &ad);
    AdamW opt, back;
    TrainState ts, ts2;
    make_state(&opt, &ts, ad.n_params, 5);
    CkError err = {{0}};
    const char *path = path_in("state.bin");
    assert_int_equal(train_state_save(path, &ts, &layout, &opt, &err), 0);

    AdamWConfig other = adamw_config_default();
    assert_int_equal(adamw_init(&back, ad.n_params, &other, &err), 0);
    memset(&ts2, 0xab, sizeof ts2);
    assert_int_equal(train_state_load(path, &ts2, &layout, &back, &err), 0);
    assert_memory_equal(opt.m, back.m, ad.n_params * sizeof *opt.m);
    assert_memory_equal(opt.v, back.v, ad.n_params * sizeof *opt.v);
    assert_memory_equal(&opt.config, &back.config, sizeof opt.config);
    assert_int_equal(back.step, 17);
    assert_int_equal(back.n_segments, opt.n_segments);
    for (size_t i = 0; i < opt.n_segments; i++) {
        assert_int_equal(back.segments[i].begin, opt.segments[i].begin);
        assert_int_equal(back.segments[i].end, opt.segments[i].end);
        assert_int_equal(back.segments[i].decay, opt.segments[i].decay);
    }
    assert_int_equal(ts2.step, 17);
    assert_int_equal(ts2.epoch, 2);
    assert_int_equal(ts2.schedule.kind, ts.schedule.kind);
    assert_true(ts2.schedule.lr == ts.schedule.lr);
    assert_int_equal(ts2.schedule.warmup_steps, ts.schedule.warmup_steps);
    assert_int_equal(ts2.schedule.total_steps, ts.schedule.total_steps);
    assert_true(ts2.schedule.num_cycles == ts.schedule.num_cycles);
    assert_int_equal(ts2.schedule.first_step_lr_zero, 0);
    assert_int_equal(ts2.n_rngs, 3);
    assert_memory_equal(ts2.rngs, ts.rngs, 3 * sizeof ts.rngs[0]);
    assert_int_equal(ts2.n_cursor, 2);
    assert_memory_equal(ts2.cursor, ts.cursor, 2 * sizeof ts.cursor[0]);
    /* the restored streams continue where the saved ones would */
    assert_true(rng_next(&ts2.rngs[1]) == rng_next(&ts.rngs[1]));

    /* no temporary file is left beside it */
    char *listing = NULL;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c tmp", tmp);
    test_run(cmd, &listing, NULL);
    assert_string_equal(listing, "0\n");
    free(listing);
    adamw_free(&opt);
    adamw_free(&back);
    lora_free(&ad);
}

static void test_layouts_differ(void **state) {
    (void)state;
    LoraAdapters a4, a8;
    make_lora(&a4, 4);
    make_lora(&a8, 8);
    TrainLayout l4, l4b, l8, lm, lm2;
    train_layout_lora(&l4, &a4);
    train_layout_lora(&l4b, &a4);
    train_layout_lora(&l8, &a8);
    train_layout_model(&lm, &model);
    assert_true(l4.hash == l4b.hash);
    assert_true(l4.hash != l8.hash && l4.hash != lm.hash);
    assert_string_equal(l4.desc,
                        "LoRA rank 4 on q_proj,v_proj, 2 layers (dim 16, hidden 24, kv 8)");
    assert_string_equal(lm.desc, "a model of dim 16, hidden 24, 2 layers, 4/2 heads, vocab 32, "
                                 "separate classifier, half-split rope");
    /* the rotary order changes the meaning of the q/k rows of the moments */
    Model other;
    ModelConfig mc = model.config;
    mc.rope_style = ROPE_INTERLEAVED;
    CkError err = {{0}};
    assert_int_equal(model_init(&other, &mc, &err), 0);
    train_layout_model(&lm2, &other);
    assert_true(lm2.hash != lm.hash && lm2.n_params == lm.n_params);
    model_free(&other);
    lora_free(&a4);
    lora_free(&a8);
}

/* Saves a state for the rank-4 adapters into path and returns its bytes (size in *size). */
static unsigned char *saved_state(const char *path, TrainLayout *layout, AdamW *opt, TrainState *ts,
                                  size_t *size) {
    LoraAdapters ad;
    make_lora(&ad, 4);
    train_layout_lora(layout, &ad);
    make_state(opt, ts, ad.n_params, 9);
    lora_free(&ad);
    CkError err = {{0}};
    assert_int_equal(train_state_save(path, ts, layout, opt, &err), 0);
    unsigned char *bytes = (unsigned char *)test_read_file(path, size);
    assert_non_null(bytes);
    return bytes;
}

/* Loads path and expects a refusal with exactly `want` (with "%s" standing for path), and the
 * optimizer untouched. */
static void expect_refusal(const char *path, const TrainLayout *layout, AdamW *opt,
                           const char *want_fmt, ...) {
    char want[1024];
    va_list ap;
    va_start(ap, want_fmt);
    char tail[512];
    vsnprintf(tail, sizeof tail, want_fmt, ap);
    va_end(ap);
    snprintf(want, sizeof want, "%s: %s", path, tail);
    const float m0 = opt->m[3];
    const int64_t step0 = opt->step;
    TrainState ts;
    CkError err = {{0}};
    assert_int_equal(train_state_load(path, &ts, layout, opt, &err), -1);
    assert_string_equal(err.msg, want);
    assert_true(opt->m[3] == m0 && opt->step == step0);
}

static void test_refuse_truncated(void **state) {
    (void)state;
    TrainLayout layout;
    AdamW opt;
    TrainState ts;
    size_t size;
    const char *path = path_in("trunc.bin");
    unsigned char *bytes = saved_state(path, &layout, &opt, &ts, &size);
    const size_t cuts[] = {size - 1, size / 2, 200, 33};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        assert_int_equal(test_write_file(path, bytes, cuts[i]), 0);
        expect_refusal(path, &layout, &opt, "truncated train state: %zu of %zu bytes", cuts[i],
                       size);
    }
    assert_int_equal(test_write_file(path, bytes, 20), 0);
    expect_refusal(path, &layout, &opt,
                   "truncated train state: 20 bytes, less than the 32-byte header");
    assert_int_equal(test_write_file(path, bytes, 0), 0);
    expect_refusal(path, &layout, &opt,
                   "truncated train state: 0 bytes, less than the 32-byte header");
    /* trailing bytes are not silently ignored either */
    unsigned char *longer = malloc(size + 4);
    memcpy(longer, bytes, size);
    memset(longer + size, 0, 4);
    assert_int_equal(test_write_file(path, longer, size + 4), 0);
    expect_refusal(path, &layout, &opt, "corrupt train state: %zu bytes, %zu expected", size + 4,
                   size);
    free(longer);
    CkError err = {{0}};
    TrainState t2;
    assert_int_equal(train_state_load(path_in("missing.bin"), &t2, &layout, &opt, &err), -1);
    free(bytes);
    adamw_free(&opt);
}

static void test_refuse_corrupt(void **state) {
    (void)state;
    TrainLayout layout;
    AdamW opt;
    TrainState ts;
    size_t size;
    const char *path = path_in("corrupt.bin");
    unsigned char *bytes = saved_state(path, &layout, &opt, &ts, &size);

    /* one flipped bit in v */
    bytes[size - 5] ^= 0x10;
    assert_int_equal(test_write_file(path, bytes, size), 0);
    uint64_t stored, computed = hash_fnv1a64(HASH_FNV1A64_OFFSET, bytes + 32, size - 32);
    memcpy(&stored, bytes + 24, 8);
    expect_refusal(path, &layout, &opt, "corrupt train state: checksum %016llx, stored %016llx",
                   (unsigned long long)computed, (unsigned long long)stored);
    bytes[size - 5] ^= 0x10;

    /* not a train state at all */
    bytes[0] = 'X';
    assert_int_equal(test_write_file(path, bytes, size), 0);
    expect_refusal(path, &layout, &opt, "not a cutkit train state (bad magic)");
    bytes[0] = 'C';
    bytes[8] = 2;
    assert_int_equal(test_write_file(path, bytes, size), 0);
    expect_refusal(path, &layout, &opt,
                   "train state version 2 is not supported (this build reads 1)");
    bytes[8] = 1;

    /* hostile counts behind a valid checksum are still checked against the bytes present */
    unsigned char *evil = malloc(size);
    memcpy(evil, bytes, size);
    const uint32_t many = 1000;
    memcpy(evil + 152, &many, 4); /* the RNG count */
    uint64_t h = hash_fnv1a64(HASH_FNV1A64_OFFSET, evil + 32, size - 32);
    memcpy(evil + 24, &h, 8);
    assert_int_equal(test_write_file(path, evil, size), 0);
    expect_refusal(path, &layout, &opt,
                   "corrupt train state: 1000 RNGs, 2 cursor words, %zu "
                   "segments",
                   opt.n_segments);
    memcpy(evil, bytes, size);
    const uint32_t cursor = 200;
    memcpy(evil + 156, &cursor, 4);
    h = hash_fnv1a64(HASH_FNV1A64_OFFSET, evil + 32, size - 32);
    memcpy(evil + 24, &h, 8);
    assert_int_equal(test_write_file(path, evil, size), 0);
    const size_t desc = (strlen(layout.desc) + 7) / 8 * 8;
    const size_t left = size - 160 - desc;
    const size_t need = opt.n_segments * 24 + 3 * 32 + 200 * 8 + 8 * opt.n;
    expect_refusal(path, &layout, &opt,
                   "corrupt train state: %zu bytes remain where the counts need %zu", left, need);
    /* a schedule that makes no sense */
    memcpy(evil, bytes, size);
    const uint32_t kind = 9;
    memcpy(evil + 64, &kind, 4);
    h = hash_fnv1a64(HASH_FNV1A64_OFFSET, evil + 32, size - 32);
    memcpy(evil + 24, &h, 8);
    assert_int_equal(test_write_file(path, evil, size), 0);
    expect_refusal(path, &layout, &opt,
                   "corrupt train state: invalid learning-rate schedule kind 9");
    free(evil);
    free(bytes);
    adamw_free(&opt);
}

static void test_refuse_other_layout(void **state) {
    (void)state;
    TrainLayout layout;
    AdamW opt;
    TrainState ts;
    size_t size;
    const char *path = path_in("layout.bin");
    free(saved_state(path, &layout, &opt, &ts, &size));
    LoraAdapters a8;
    make_lora(&a8, 8);
    TrainLayout l8;
    train_layout_lora(&l8, &a8);
    AdamW o8;
    CkError err = {{0}};
    AdamWConfig c = adamw_config_default();
    assert_int_equal(adamw_init(&o8, a8.n_params, &c, &err), 0);
    expect_refusal(path, &l8, &o8,
                   "saved for LoRA rank 4 on q_proj,v_proj, 2 layers (dim 16, hidden 24, kv 8) "
                   "(448 parameters), but this run trains LoRA rank 8 on q_proj,v_proj, 2 layers "
                   "(dim 16, hidden 24, kv 8) (896 parameters); resume with the same model and "
                   "adapter settings");
    /* same description and size, other tensors: the fingerprint still tells */
    TrainLayout forged = layout;
    forged.hash ^= 1;
    expect_refusal(path, &forged, &opt,
                   "saved for %s with another tensor layout (fingerprint %016llx, this run "
                   "%016llx); resume with the same model and adapter settings",
                   layout.desc, (unsigned long long)layout.hash, (unsigned long long)forged.hash);
    /* an optimizer of the wrong size is refused before the file is read */
    TrainState t2;
    assert_int_equal(train_state_load(path, &t2, &layout, &o8, &err), -1);
    adamw_free(&o8);
    adamw_free(&opt);
    lora_free(&a8);
}

/* ---- checkpoint directories ------------------------------------------------------------- */

typedef struct {
    const float *params;
    size_t n;
    int fail;
} RawWeights;

/* The weights of these tests: the raw float buffer as weights.bin. */
static int save_raw(void *ctx, const char *dir, CkError *err) {
    const RawWeights *w = ctx;
    if (w->fail) return ck_fail(err, "disk full (simulated)");
    char path[600];
    snprintf(path, sizeof path, "%s/weights.bin", dir);
    if (test_write_file(path, w->params, w->n * sizeof *w->params) != 0)
        return ck_fail(err, "%s: cannot write", path);
    return 0;
}

static char *read_latest(const char *root) {
    char path[700];
    snprintf(path, sizeof path, "%s/latest", root);
    return test_read_file(path, NULL);
}

static void test_checkpoint_protocol(void **state) {
    (void)state;
    char root[600];
    snprintf(root, sizeof root, "%s/run/ckpt", tmp); /* created on the first save */
    const size_t n = 64;
    float params[64] = {0};
    RawWeights w = {params, n, 0};
    TrainLayout layout = {0x1234, n, "64 test floats"};
    AdamW opt;
    TrainState ts;
    make_state(&opt, &ts, n, 3);
    CkError err = {{0}};
    char dir[700], want[700];
    int64_t step = -1;

    /* a run that never saved has nothing to resume from; a root that is a file is an error */
    assert_int_equal(checkpoint_find_latest(root, dir, sizeof dir, &step, &err), 0);
    char not_dir[720];
    snprintf(not_dir, sizeof not_dir, "%s/ckpt-is-a-file", tmp);
    assert_int_equal(test_write_file(not_dir, "x", 1), 0);
    assert_int_equal(checkpoint_find_latest(not_dir, dir, sizeof dir, &step, &err), -1);
    for (int64_t s = 10; s <= 30; s += 10) {
        ts.step = s;
        params[0] = (float)s;
        assert_int_equal(
            checkpoint_save(root, CHECKPOINT_KEEP_DEFAULT, save_raw, &w, &ts, &layout, &opt, &err),
            0);
    }
    /* keep 1 previous: 20 and 30 remain */
    snprintf(want, sizeof want, "%s/checkpoint-10", root);
    assert_false(exists(want));
    snprintf(want, sizeof want, "%s/checkpoint-20/weights.bin", root);
    assert_true(exists(want));
    snprintf(want, sizeof want, "%s/checkpoint-30/train_state.bin", root);
    assert_true(exists(want));
    char *latest = read_latest(root);
    assert_string_equal(latest, "checkpoint-30\n");
    free(latest);
    assert_int_equal(checkpoint_find_latest(root, dir, sizeof dir, &step, &err), 1);
    snprintf(want, sizeof want, "%s/checkpoint-30", root);
    assert_string_equal(dir, want);
    assert_int_equal(step, 30);

    /* an interrupted save of 40 leaves a .tmp that resuming ignores */
    snprintf(want, sizeof want, "%s/checkpoint-40.tmp", root);
    assert_int_equal(mkdir(want, 0755), 0);
    snprintf(want, sizeof want, "%s/checkpoint-40.tmp/train_state.bin", root);
    assert_int_equal(test_write_file(want, "partial", 7), 0);
    assert_int_equal(checkpoint_find_latest(root, dir, sizeof dir, &step, &err), 1);
    assert_int_equal(step, 30);
    /* also when latest is gone or names something that is not there, or names a .tmp */
    snprintf(want, sizeof want, "%s/latest", root);
    assert_int_equal(unlink(want), 0);
    assert_int_equal(checkpoint_find_latest(root, dir, sizeof dir, &step, &err), 1);
    assert_int_equal(step, 30);
    assert_int_equal(test_write_file(want, "checkpoint-99\n", 14), 0);
    assert_int_equal(checkpoint_find_latest(root, dir, sizeof dir, &step, &err), 1);
    assert_int_equal(step, 30);
    assert_int_equal(test_write_file(want, "checkpoint-40.tmp\n", 18), 0);
    assert_int_equal(checkpoint_find_latest(root, dir, sizeof dir, &step, &err), 1);
    assert_int_equal(step, 30);
    /* latest is what counts when it names a complete checkpoint, even an older one */
    assert_int_equal(test_write_file(want, "checkpoint-20\n", 14), 0);
    assert_int_equal(checkpoint_find_latest(root, dir, sizeof dir, &step, &err), 1);
    assert_int_equal(step, 20);
    assert_int_equal(test_write_file(want, "checkpoint-30\n", 14), 0);

    /* a failing save leaves the previous checkpoints and latest as they were */
    ts.step = 50;
    w.fail = 1;
    assert_int_equal(
        checkpoint_save(root, CHECKPOINT_KEEP_DEFAULT, save_raw, &w, &ts, &layout, &opt, &err), -1);
    assert_string_equal(err.msg, "saving checkpoint 50: disk full (simulated)");
    snprintf(want, sizeof want, "%s/checkpoint-50.tmp", root);
    assert_false(exists(want));
    snprintf(want, sizeof want, "%s/checkpoint-20", root);
    assert_true(exists(want));
    latest = read_latest(root);
    assert_string_equal(latest, "checkpoint-30\n");
    free(latest);

    /* the next good save removes the leftover and the oldest */
    w.fail = 0;
    params[0] = 50;
    assert_int_equal(
        checkpoint_save(root, CHECKPOINT_KEEP_DEFAULT, save_raw, &w, &ts, &layout, &opt, &err), 0);
    snprintf(want, sizeof want, "%s/checkpoint-40.tmp", root);
    assert_false(exists(want));
    snprintf(want, sizeof want, "%s/checkpoint-20", root);
    assert_false(exists(want));
    snprintf(want, sizeof want, "%s/checkpoint-30", root);
    assert_true(exists(want));

    /* saving the same step again replaces it in place */
    params[0] = 51;
    assert_int_equal(
        checkpoint_save(root, CHECKPOINT_KEEP_DEFAULT, save_raw, &w, &ts, &layout, &opt, &err), 0);
    snprintf(want, sizeof want, "%s/checkpoint-50/weights.bin", root);
    float *back = (float *)test_read_file(want, NULL);
    assert_true(back[0] == 51.0f);
    free(back);
    snprintf(want, sizeof want, "%s/checkpoint-50.tmp", root);
    assert_false(exists(want));
    snprintf(want, sizeof want, "%s/checkpoint-30", root);
    assert_true(exists(want));

    /* keep 0: only the newest; a negative keep keeps everything */
    ts.step = 60;
    assert_int_equal(checkpoint_save(root, 0, save_raw, &w, &ts, &layout, &opt, &err), 0);
    snprintf(want, sizeof want, "%s/checkpoint-50", root);
    assert_false(exists(want));
    snprintf(want, sizeof want, "%s/checkpoint-30", root);
    assert_false(exists(want));
    ts.step = 70;
    assert_int_equal(checkpoint_save(root, -1, save_raw, &w, &ts, &layout, &opt, &err), 0);
    ts.step = 80;
    assert_int_equal(checkpoint_save(root, -1, save_raw, &w, &ts, &layout, &opt, &err), 0);
    snprintf(want, sizeof want, "%s/checkpoint-60", root);
    assert_true(exists(want));

    /* the found checkpoint loads */
    assert_int_equal(checkpoint_find_latest(root, dir, sizeof dir, &step, &err), 1);
    assert_int_equal(step, 80);
    char path[800];
    snprintf(path, sizeof path, "%s/%s", dir, CHECKPOINT_STATE_FILE);
    TrainState back_ts;
    assert_int_equal(train_state_load(path, &back_ts, &layout, &opt, &err), 0);
    assert_int_equal(back_ts.step, 80);

    /* a directory without checkpoints */
    snprintf(want, sizeof want, "%s/empty", tmp);
    assert_int_equal(mkdir(want, 0755), 0);
    assert_int_equal(checkpoint_find_latest(want, dir, sizeof dir, &step, &err), 0);
    adamw_free(&opt);
}

/* Six optimizer steps in one go equal three, a checkpoint, a fresh process state loaded from
 * it, and three more: bit for bit, including the schedule and the RNG the gradients use. */
static void test_resume_is_exact(void **state) {
    (void)state;
    const size_t n = 50000;
    const Schedule sched = schedule_make(SCHED_COSINE, 1e-2, 2, 6);
    CkError err = {{0}};
    float *straight = malloc(n * sizeof *straight), *resumed = malloc(n * sizeof *resumed);
    float *g = malloc(n * sizeof *g);
    for (size_t i = 0; i < n; i++) straight[i] = resumed[i] = (float)(i % 97) * 0.01f - 0.5f;
    AdamWConfig c = adamw_config_default();
    TrainLayout layout = {0xfeed, n, "50000 floats"};

    /* uninterrupted */
    AdamW opt;
    Rng data;
    rng_seed(&data, 77);
    assert_int_equal(adamw_init(&opt, n, &c, &err), 0);
    for (int k = 0; k < 6; k++) {
        for (size_t i = 0; i < n; i++) g[i] = rng_float(&data) - 0.5f;
        optim_clip_grad_norm(g, n, 1.0);
        assert_int_equal(adamw_step(&opt, straight, g, schedule_lr(&sched, opt.step), &err), 0);
    }
    adamw_free(&opt);

    /* interrupted after 3 */
    char root[600];
    snprintf(root, sizeof root, "%s/resume", tmp);
    rng_seed(&data, 77);
    assert_int_equal(adamw_init(&opt, n, &c, &err), 0);
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < n; i++) g[i] = rng_float(&data) - 0.5f;
        optim_clip_grad_norm(g, n, 1.0);
        assert_int_equal(adamw_step(&opt, resumed, g, schedule_lr(&sched, opt.step), &err), 0);
    }
    TrainState ts = {0};
    ts.step = opt.step;
    ts.schedule = sched;
    ts.n_rngs = 1;
    ts.rngs[0] = data;
    RawWeights w = {resumed, n, 0};
    assert_int_equal(checkpoint_save(root, 1, save_raw, &w, &ts, &layout, &opt, &err), 0);
    adamw_free(&opt);
    memset(resumed, 0, n * sizeof *resumed);

    char dir[700], path[800];
    assert_int_equal(checkpoint_find_latest(root, dir, sizeof dir, NULL, &err), 1);
    snprintf(path, sizeof path, "%s/weights.bin", dir);
    float *weights = (float *)test_read_file(path, NULL);
    memcpy(resumed, weights, n * sizeof *resumed);
    free(weights);
    AdamWConfig wrong = {0.5, 0.5, 1e-3, 0.5}; /* replaced by the saved settings */
    assert_int_equal(adamw_init(&opt, n, &wrong, &err), 0);
    TrainState back;
    snprintf(path, sizeof path, "%s/%s", dir, CHECKPOINT_STATE_FILE);
    assert_int_equal(train_state_load(path, &back, &layout, &opt, &err), 0);
    data = back.rngs[0];
    for (int k = 3; k < 6; k++) {
        for (size_t i = 0; i < n; i++) g[i] = rng_float(&data) - 0.5f;
        optim_clip_grad_norm(g, n, 1.0);
        assert_int_equal(adamw_step(&opt, resumed, g, schedule_lr(&back.schedule, opt.step), &err),
                         0);
    }
    assert_memory_equal(straight, resumed, n * sizeof *resumed);
    adamw_free(&opt);
    free(straight);
    free(resumed);
    free(g);
}

/* The two ready-made weight writers produce folders that the loaders read back. */
static void test_weight_writers(void **state) {
    (void)state;
    CkError err = {{0}};
    char root[600], dir[700];
    snprintf(root, sizeof root, "%s/full", tmp);
    HfConfig cfg = {model.config, 1, 2, "LlamaForCausalLM"};
    CheckpointHfModel hf = {&model, &cfg, "test"};
    TrainLayout layout;
    train_layout_model(&layout, &model);
    AdamW opt;
    AdamWConfig c = adamw_config_default();
    assert_int_equal(adamw_init(&opt, model.n_params, &c, &err), 0);
    TrainState ts = {0};
    ts.step = 4;
    ts.schedule = schedule_make(SCHED_CONSTANT, 1e-3, 0, 0);
    assert_int_equal(
        checkpoint_save(root, 1, checkpoint_save_hf_model, &hf, &ts, &layout, &opt, &err), 0);
    assert_int_equal(checkpoint_find_latest(root, dir, sizeof dir, NULL, &err), 1);
    Model back;
    HfConfig back_cfg;
    assert_int_equal(hf_model_load(&back, &back_cfg, dir, &err), 0);
    assert_memory_equal(back.params, model.params, model.n_params * sizeof *model.params);
    model_free(&back);
    adamw_free(&opt);

    LoraAdapters ad;
    make_lora(&ad, 4);
    for (size_t i = 0; i < ad.n_params; i++) ad.params[i] = (float)i * 1e-3f;
    snprintf(root, sizeof root, "%s/lora", tmp);
    CheckpointPeft peft = {&ad, &model, "tiny", NULL};
    train_layout_lora(&layout, &ad);
    assert_int_equal(adamw_init(&opt, ad.n_params, &c, &err), 0);
    assert_int_equal(
        checkpoint_save(root, 1, checkpoint_save_peft, &peft, &ts, &layout, &opt, &err), 0);
    assert_int_equal(checkpoint_find_latest(root, dir, sizeof dir, NULL, &err), 1);
    LoraAdapters ad2;
    assert_int_equal(peft_load(&ad2, &model, dir, &err), 0);
    assert_memory_equal(ad2.params, ad.params, ad.n_params * sizeof *ad.params);
    lora_free(&ad2);
    lora_free(&ad);
    adamw_free(&opt);
}

int main(void) {
    threads_set(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),          cmocka_unit_test(test_layouts_differ),
        cmocka_unit_test(test_refuse_truncated),    cmocka_unit_test(test_refuse_corrupt),
        cmocka_unit_test(test_refuse_other_layout), cmocka_unit_test(test_checkpoint_protocol),
        cmocka_unit_test(test_resume_is_exact),     cmocka_unit_test(test_weight_writers),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
