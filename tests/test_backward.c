/* test_backward.c — every gradient of the training engine: the loss of one row against
 * double-precision finite differences; every parameter tensor of tiny ragged models (both
 * RoPE styles, shared and separate classifiers, GQA, MLE with masked prompts, unlikelihood,
 * mixed weights) and the LoRA matrices against central finite differences; all of them
 * against PyTorch autograd (tests/fixtures/grad_fixture.bin, see its README); accumulation,
 * thread-count invariance, and a model that overfits a few sequences. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include "model/backward.h"
#include "formats/lm.h"
#include "model/lora.h"
#include "model/model.h"
#include "util/rng.h"
#include "util/threads.h"

/* ---------------------------------------------------------------------------------------- */
/* helpers: tiny random models and packed batches */

static float uniform(Rng *r, float lo, float hi) {
    return lo + (hi - lo) * rng_float(r);
}

/* Fills m (already initialised) with weights of realistic scale: unit-ish embeddings,
 * norm gains around 1 (not 1, so that their gradients matter), projections ±1.5/sqrt(in). */
static void randomize_model(Model *m, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    for (int id = 0; id < PARAM_COUNT; id++) {
        const ParamTensor *t = &m->tensors[id];
        float *p = m->params + t->offset;
        for (size_t i = 0; i < t->size; i++) {
            if (t->rank == 1)
                p[i] = uniform(&r, 0.6f, 1.4f);
            else if (id == PARAM_TOKEN_EMBEDDING)
                p[i] = uniform(&r, -1.2f, 1.2f);
            else
                p[i] = uniform(&r, -1.5f, 1.5f) / sqrtf((float)t->shape[1]) *
                       (id == PARAM_WCLS ? 2.0f : 1.0f);
        }
    }
}

static ModelConfig tiny_config(int dim, int hidden, int layers, int heads, int kv_heads, int vocab,
                               RopeStyle rope, int shared) {
    ModelConfig c = {dim, hidden, layers,   heads, kv_heads, vocab,
                     16,  1e-5f,  10000.0f, rope,  shared};
    return c;
}

typedef enum { MIX_MLE_PROMPT, MIX_UL, MIX_MIXED } LossMix;

#define MAX_TOK 64
typedef struct {
    int n_seqs;
    int offsets[9];
    int tokens[MAX_TOK];
    int targets[MAX_TOK];
    LossKind kinds[MAX_TOK];
    float weights[MAX_TOK];
    TokenBatch batch;
    LossSpec loss;
} Batch;

/* Packs sequences of the given lengths with random tokens; targets are the next tokens;
 * loss kinds and weights follow mix. */
static void make_batch(Batch *bt, const int *lens, int n_seqs, int V, LossMix mix, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    memset(bt, 0, sizeof *bt);
    bt->n_seqs = n_seqs;
    for (int s = 0; s < n_seqs; s++) bt->offsets[s + 1] = bt->offsets[s] + lens[s];
    const int n = bt->offsets[n_seqs];
    assert_true(n <= MAX_TOK);
    for (int i = 0; i < n; i++) bt->tokens[i] = (int)(rng_next(&r) % (uint64_t)V);
    int count = 0;
    for (int s = 0; s < n_seqs; s++) {
        for (int t = 0; t < lens[s]; t++) {
            const int i = bt->offsets[s] + t;
            bt->targets[i] = t + 1 < lens[s] ? bt->tokens[i + 1] : -1;
            LossKind k = LOSS_NONE;
            if (bt->targets[i] >= 0) {
                if (mix == MIX_MLE_PROMPT)
                    k = t >= 2 ? LOSS_MLE : LOSS_NONE; /* a two-token prompt, masked */
                else if (mix == MIX_UL)
                    k = LOSS_UNLIKELIHOOD;
                else
                    k = (LossKind)(rng_next(&r) % 3);
            }
            bt->kinds[i] = k;
            count += k != LOSS_NONE;
        }
    }
    for (int i = 0; i < n; i++) {
        if (bt->kinds[i] == LOSS_NONE) continue;
        bt->weights[i] = mix == MIX_MIXED ? uniform(&r, 0.1f, 1.5f) : 1.0f / (float)count;
    }
    bt->batch = (TokenBatch){n_seqs, bt->offsets, bt->tokens};
    bt->loss = (LossSpec){.targets = bt->targets,
                          .kinds = bt->kinds,
                          .weights = bt->weights,
                          .ul_min_q = 0.0f,
                          .logprobs = NULL};
}

/* ---------------------------------------------------------------------------------------- */
/* finite differences */

typedef struct {
    const Model *m;
    Activations *a;
    const Batch *bt;
    LoraAdapters *lora;
    Rng lora_rng; /* the dropout stream at the analytic pass: every evaluation replays it */
} LossCtx;

static double eval_loss(LossCtx *x) {
    CkError err = {{0}};
    LossResult r;
    if (x->lora) x->lora->dropout_rng = x->lora_rng;
    assert_int_equal(model_forward_backward(x->m, x->a, &x->bt->batch, &x->bt->loss, NULL, x->lora,
                                            NULL, &r, &err),
                     0);
    return r.loss;
}

/* Central difference at *p, Richardson-extrapolated from steps h and h/2 (error O(h^4)),
 * with the steps that float arithmetic actually took. */
static double central_difference(LossCtx *x, float *p, float h) {
    const float orig = *p;
    double d[2];
    for (int k = 0; k < 2; k++) {
        const float step = k ? h / 2 : h;
        float hi = orig + step, lo = orig - step;
        *p = hi;
        double lp = eval_loss(x);
        *p = lo;
        double lm = eval_loss(x);
        d[k] = (lp - lm) / ((double)hi - lo);
    }
    *p = orig;
    return (4.0 * d[1] - d[0]) / 3.0;
}

/* Compares analytic gradients g (n) of the buffer p against finite differences at up to
 * `samples` elements (all when n is smaller) and returns max |fd - g| / max |g|. */
static double check_tensor(LossCtx *x, float *p, const float *g, size_t n, int samples, float h,
                           uint64_t seed, const char *name) {
    double gmax = 0.0, emax = 0.0;
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(g[i]));
    Rng r;
    rng_seed(&r, seed);
    const int all = n <= (size_t)samples;
    const size_t count = all ? n : (size_t)samples;
    for (size_t s = 0; s < count; s++) {
        size_t i = all ? s : (size_t)(rng_next(&r) % n);
        double fd = central_difference(x, p + i, h);
        emax = fmax(emax, fabs(fd - g[i]));
    }
    double rel = gmax > 0 ? emax / gmax : emax;
    printf("  %-62s max|g| %.3e  max|fd - g| %.2e  (%.2e of max|g|)\n", name, gmax, emax, rel);
    return rel;
}

/* Runs the analytic pass once and checks every parameter tensor against finite
 * differences; returns the worst relative error. One thread: the shapes are far too small
 * for a second one to pay for waking it, thousands of times. */
static double check_model(const ModelConfig *c, const int *lens, int n_seqs, LossMix mix,
                          uint64_t seed) {
    threads_set(1);
    Model m;
    CkError err = {{0}};
    assert_int_equal(model_init(&m, c, &err), 0);
    randomize_model(&m, seed);
    Batch bt;
    make_batch(&bt, lens, n_seqs, c->vocab_size, mix, seed + 1);
    Activations a;
    assert_int_equal(activations_init(&a, &m, MAX_TOK, c->seq_len, 1, &err), 0);
    float *grads = calloc(m.n_params, sizeof(float));
    LossResult res;
    assert_int_equal(
        model_forward_backward(&m, &a, &bt.batch, &bt.loss, grads, NULL, NULL, &res, &err), 0);
    printf(" loss %.6f (MLE %d, UL %d positions)\n", res.loss, res.n_mle, res.n_ul);
    LossCtx x = {&m, &a, &bt, NULL, {{0}}};
    double worst = 0.0;
    for (int id = 0; id < PARAM_COUNT; id++) {
        const ParamTensor *t = &m.tensors[id];
        if (t->size == 0) continue;
        worst = fmax(worst, check_tensor(&x, m.params + t->offset, grads + t->offset, t->size, 40,
                                         2e-2f, seed + id, t->name));
    }
    free(grads);
    activations_free(&a);
    model_free(&m);
    threads_set(0);
    return worst;
}

/* Error of a tensor's gradient, max |fd - g| / max |g|. The fp32 forward carries ~1e-7
 * relative rounding, which a step of 1e-2 turns into ~1e-5 of the gradient; Richardson
 * extrapolation (steps 2e-2 and 1e-2) leaves a truncation error of order h^4. Measured:
 * 8e-5 .. 4e-4 per test (LoRA with its products of small matrices the largest); a missing
 * or wrong term in any backward is off by O(1e-2 .. 1). */
#define FD_TOLERANCE 2e-3

static const int RAGGED[] = {5, 1, 7, 3}; /* 16 positions, one sequence of length 1 */

static void test_fd_interleaved_shared_mle_prompt(void **state) {
    (void)state;
    ModelConfig c = tiny_config(12, 10, 2, 3, 1, 11, ROPE_INTERLEAVED, 1);
    assert_close(check_model(&c, RAGGED, 4, MIX_MLE_PROMPT, 11), 0, FD_TOLERANCE);
}

static void test_fd_half_split_unshared_mle_prompt(void **state) {
    (void)state;
    ModelConfig c = tiny_config(12, 10, 2, 3, 1, 11, ROPE_HALF_SPLIT, 0);
    assert_close(check_model(&c, RAGGED, 4, MIX_MLE_PROMPT, 21), 0, FD_TOLERANCE);
}

static void test_fd_unlikelihood_alone(void **state) {
    (void)state;
    ModelConfig c = tiny_config(12, 10, 2, 3, 1, 11, ROPE_INTERLEAVED, 0);
    assert_close(check_model(&c, RAGGED, 4, MIX_UL, 31), 0, FD_TOLERANCE);
}

static void test_fd_mixed_kinds_and_weights(void **state) {
    (void)state;
    /* 4 query heads sharing 2 kv heads, head size 4, half-split RoPE, tied classifier */
    ModelConfig c = tiny_config(16, 13, 2, 4, 2, 9, ROPE_HALF_SPLIT, 1);
    const int lens[] = {6, 2, 9};
    assert_close(check_model(&c, lens, 3, MIX_MIXED, 41), 0, FD_TOLERANCE);
}

/* ---------------------------------------------------------------------------------------- */
/* the loss of one row on its own */

/* The loss of one row in double precision, straight from the definition; 1 - p is summed
 * over the other tokens so that it keeps its digits as p -> 1. */
static double ref_row_loss(const double *z, int V, int t, LossKind kind, double w) {
    double mx = z[0];
    for (int j = 1; j < V; j++) mx = fmax(mx, z[j]);
    double s = 0.0, others = 0.0;
    for (int j = 0; j < V; j++) {
        s += exp(z[j] - mx);
        if (j != t) others += exp(z[j] - mx);
    }
    return kind == LOSS_MLE ? -w * (z[t] - mx - log(s)) : -w * (log(others) - log(s));
}

/* loss_row's gradient against double-precision central differences of the definition,
 * for MLE and unlikelihood, targets everywhere in the row, and p from ~0 to ~1. */
static void test_loss_row_gradients(void **state) {
    (void)state;
    enum { V = 11 };
    Rng r;
    rng_seed(&r, 5);
    double worst[3] = {0, 0, 0};
    for (int trial = 0; trial < 60; trial++) {
        float z[V], dz[V];
        double zd[V];
        const int t = trial % V;
        /* spread of logits from flat to peaked, and the target pushed up in some trials */
        const float spread = 0.5f + (float)(trial % 5) * 2.0f;
        for (int j = 0; j < V; j++) z[j] = uniform(&r, -spread, spread);
        if (trial % 3 == 0) z[t] += 6.0f + (float)(trial % 4) * 3.0f; /* p_t up to 1 - 1e-9 */
        const LossKind kind = trial % 2 ? LOSS_UNLIKELIHOOD : LOSS_MLE;
        const float w = 0.25f + (float)(trial % 7) * 0.3f;
        double logp;
        int floored;
        double l = loss_row(z, V, t, kind, w, 1e-12f, dz, &logp, &floored);
        for (int j = 0; j < V; j++) zd[j] = z[j];
        assert_float_equal(l, ref_row_loss(zd, V, t, kind, w), 1e-9 + 1e-6 * fabs(l));
        double dsum = 0.0, gscale = 0.0;
        for (int j = 0; j < V; j++) {
            const double h = 1e-5;
            zd[j] = z[j] + h;
            double lp = ref_row_loss(zd, V, t, kind, w);
            zd[j] = z[j] - h;
            double lm = ref_row_loss(zd, V, t, kind, w);
            zd[j] = z[j];
            double fd = (lp - lm) / (2 * h);
            gscale = fmax(gscale, fabs(fd));
            worst[kind] = fmax(worst[kind], fabs(fd - dz[j]) / fmax(fabs(fd), 1e-3));
            dsum += dz[j];
        }
        /* softmax gradients sum to zero over the row */
        assert_close(dsum, 0, 1e-6 * fmax(gscale, 1.0));
    }
    printf("loss_row vs finite differences: MLE max rel %.2e, unlikelihood %.2e\n", worst[LOSS_MLE],
           worst[LOSS_UNLIKELIHOOD]);
    assert_close(worst[LOSS_MLE], 0, 1e-5);
    assert_close(worst[LOSS_UNLIKELIHOOD], 0, 1e-5);
}

/* A vocabulary-sized row, with the target at either end and in the middle: the vectorised
 * exponentials and lane sums agree with double precision (loss to 1e-6 relative to
 * |loss| + 0.1; gradient entries, whose float e^x carry up to ~3e-7 relative error, to 3e-6
 * of the largest). */
static void test_loss_row_wide(void **state) {
    (void)state;
    enum { V = 32003 };
    float *z = malloc(sizeof(float) * V), *dz = malloc(sizeof(float) * V);
    double *zd = malloc(sizeof(double) * V);
    Rng r;
    rng_seed(&r, 6);
    for (int j = 0; j < V; j++) z[j] = uniform(&r, -12.0f, 9.0f);
    const int targets[4] = {0, 15001, V - 1, 77};
    double worst_l = 0.0, worst_g = 0.0;
    for (int k = 0; k < 8; k++) {
        const int t = targets[k % 4];
        const LossKind kind = k < 4 ? LOSS_MLE : LOSS_UNLIKELIHOOD;
        if (k == 3 || k == 7) z[t] = 25.0f; /* p_t close to 1 */
        for (int j = 0; j < V; j++) zd[j] = z[j];
        double logp;
        double l = loss_row(z, V, t, kind, 0.5f, 1e-12f, dz, &logp, NULL);
        double ref = ref_row_loss(zd, V, t, kind, 0.5);
        /* relative, but a loss near 0 (p_t ~ 1) is only as exact as float e^x: 1e-7 */
        worst_l = fmax(worst_l, fabs(l - ref) / (fabs(ref) + 0.1));
        /* the analytic gradient in double */
        double mx = zd[0], s = 0.0;
        for (int j = 1; j < V; j++) mx = fmax(mx, zd[j]);
        for (int j = 0; j < V; j++) s += exp(zd[j] - mx);
        const double pt = exp(zd[t] - mx) / s;
        double gmax = 0.0, emax = 0.0;
        for (int j = 0; j < V; j++) {
            const double pj = exp(zd[j] - mx) / s, onehot = j == t;
            const double g = kind == LOSS_MLE ? 0.5 * (pj - onehot)
                                              : 0.5 * pt * (onehot - (j == t ? 0 : pj / (1 - pt)));
            gmax = fmax(gmax, fabs(g));
            emax = fmax(emax, fabs(g - dz[j]));
        }
        worst_g = fmax(worst_g, emax / gmax);
    }
    printf("wide rows (V %d): loss max rel %.2e, gradient max %.2e of the largest entry\n", V,
           worst_l, worst_g);
    assert_close(worst_l, 0, 1e-6);
    assert_close(worst_g, 0, 3e-6);
    free(z);
    free(dz);
    free(zd);
}

/* Where 1 - p falls below the floor the loss is capped at -w log(min_q), counted, and the
 * gradient still points away from the token (bounded, summing to zero); when every other
 * logit underflows the gradient is still exact. */
static void test_loss_row_floor_and_extremes(void **state) {
    (void)state;
    enum { V = 6 };
    float z[V] = {0.0f, 1.0f, -2.0f, 30.0f, 0.5f, -1.0f}, dz[V];
    double logp;
    int floored;
    /* 1 - p = ~e^-29 < 1e-5: capped */
    double l = loss_row(z, V, 3, LOSS_UNLIKELIHOOD, 2.0f, 1e-5f, dz, &logp, &floored);
    assert_int_equal(floored, 1);
    assert_float_equal(l, -2.0 * log(1e-5), 1e-9);
    assert_float_equal(dz[3], 2.0, 1e-6); /* w p_t, p_t = 1 */
    double sum = 0.0;
    for (int j = 0; j < V; j++) sum += dz[j];
    assert_close(sum, 0, 1e-6);
    assert_true(dz[1] < dz[0] && dz[0] < 0.0f); /* pushes the others up, most the likeliest */
    /* the default floor applies for min_q <= 0 */
    l = loss_row(z, V, 3, LOSS_UNLIKELIHOOD, 1.0f, 0.0f, dz, &logp, &floored);
    assert_float_equal(l, -log(LOSS_UL_MIN_Q_DEFAULT), 1e-6);
    /* all others ~200 below: their float exponentials underflow; the slow path keeps the
     * direction: others get -w p_j / (1 - p_t), i.e. a softmax among themselves */
    float far[V] = {-200.0f, -199.0f, -201.0f, 0.0f, -200.0f, -200.5f};
    loss_row(far, V, 3, LOSS_UNLIKELIHOOD, 1.0f, 1e-30f, dz, &logp, &floored);
    double s = 0.0, ref[V];
    for (int j = 0; j < V; j++) s += j == 3 ? 0.0 : exp((double)far[j] + 199.0);
    for (int j = 0; j < V; j++) ref[j] = j == 3 ? 1.0 : -exp((double)far[j] + 199.0) / s;
    for (int j = 0; j < V; j++) assert_float_equal(dz[j], ref[j], 1e-6);
    /* MLE with p_t -> 0: gradient w (p - onehot) */
    loss_row(far, V, 0, LOSS_MLE, 1.0f, 0.0f, dz, &logp, &floored);
    assert_float_equal(logp, -200.0, 1e-4);
    assert_float_equal(dz[0], -1.0, 1e-6);
    assert_float_equal(dz[3], 1.0, 1e-6);
}

/* ---------------------------------------------------------------------------------------- */
/* LoRA matrices against finite differences */

static void check_lora(float dropout, uint64_t seed) {
    threads_set(1);
    ModelConfig c = tiny_config(12, 10, 2, 3, 1, 11, ROPE_INTERLEAVED, 0);
    Model m;
    CkError err = {{0}};
    assert_int_equal(model_init(&m, &c, &err), 0);
    randomize_model(&m, seed);
    LoraConfig lc = {3, 6.0f, dropout, LORA_TARGET_ALL};
    LoraAdapters ad;
    assert_int_equal(lora_init(&ad, &m, &lc, seed, &err), 0);
    /* non-zero B, so that A has a gradient too */
    Rng r;
    rng_seed(&r, seed + 7);
    for (int i = 0; i < ad.n_tensors; i++)
        if (ad.tensors[i].is_b)
            for (size_t j = 0; j < ad.tensors[i].size; j++)
                ad.params[ad.tensors[i].offset + j] = uniform(&r, -0.4f, 0.4f);
    Batch bt;
    make_batch(&bt, RAGGED, 4, c.vocab_size, MIX_MIXED, seed + 1);
    Activations a;
    assert_int_equal(activations_init(&a, &m, MAX_TOK, c.seq_len, 1, &err), 0);
    float *lgrads = calloc(ad.n_params, sizeof(float));
    LossCtx x = {&m, &a, &bt, &ad, ad.dropout_rng};
    LossResult res;
    /* the base is frozen: no base gradient buffer at all */
    assert_int_equal(
        model_forward_backward(&m, &a, &bt.batch, &bt.loss, NULL, &ad, lgrads, &res, &err), 0);
    printf(" LoRA r=3 alpha=6 dropout=%.2f: loss %.6f\n", (double)dropout, res.loss);
    double worst = 0.0;
    for (int i = 0; i < ad.n_tensors; i++) {
        const LoraTensor *t = &ad.tensors[i];
        worst = fmax(worst, check_tensor(&x, ad.params + t->offset, lgrads + t->offset, t->size, 12,
                                         2e-2f, seed + i, t->name));
    }
    assert_close(worst, 0, FD_TOLERANCE);
    free(lgrads);
    activations_free(&a);
    lora_free(&ad);
    model_free(&m);
    threads_set(0);
}

static void test_fd_lora(void **state) {
    (void)state;
    check_lora(0.0f, 51);
}

/* with dropout the masks of the analytic pass are replayed by every evaluation */
static void test_fd_lora_dropout(void **state) {
    (void)state;
    check_lora(0.3f, 61);
}

/* Frozen base (grads NULL) gives the same adapter gradients as computing both; an unmerged
 * adapter with B = 0 leaves the base gradients as they are without one. */
static void test_lora_frozen_base_same_gradients(void **state) {
    (void)state;
    ModelConfig c = tiny_config(16, 13, 2, 4, 2, 9, ROPE_HALF_SPLIT, 1);
    Model m;
    CkError err = {{0}};
    assert_int_equal(model_init(&m, &c, &err), 0);
    randomize_model(&m, 71);
    LoraConfig lc = {2, 4.0f, 0.0f, LORA_BIT(LORA_Q) | LORA_BIT(LORA_V) | LORA_BIT(LORA_DOWN)};
    LoraAdapters ad;
    assert_int_equal(lora_init(&ad, &m, &lc, 72, &err), 0);
    Batch bt;
    make_batch(&bt, RAGGED, 4, c.vocab_size, MIX_MIXED, 73);
    Activations a;
    assert_int_equal(activations_init(&a, &m, MAX_TOK, c.seq_len, 1, &err), 0);
    float *g_base = calloc(m.n_params, sizeof(float)), *g_plain = calloc(m.n_params, sizeof(float));
    float *lg1 = calloc(ad.n_params, sizeof(float)), *lg2 = calloc(ad.n_params, sizeof(float));
    assert_int_equal(
        model_forward_backward(&m, &a, &bt.batch, &bt.loss, g_base, &ad, lg1, NULL, &err), 0);
    assert_int_equal(
        model_forward_backward(&m, &a, &bt.batch, &bt.loss, NULL, &ad, lg2, NULL, &err), 0);
    assert_int_equal(
        model_forward_backward(&m, &a, &bt.batch, &bt.loss, g_plain, NULL, NULL, NULL, &err), 0);
    double d_lora = 0.0, d_base = 0.0, lmax = 0.0;
    for (size_t i = 0; i < ad.n_params; i++) {
        d_lora = fmax(d_lora, fabs(lg1[i] - lg2[i]));
        lmax = fmax(lmax, fabs(lg1[i]));
    }
    for (size_t i = 0; i < m.n_params; i++) d_base = fmax(d_base, fabs(g_base[i] - g_plain[i]));
    printf("frozen vs trained base: max |dLoRA diff| %.3g (max |g| %.3g); base grads with B=0 "
           "adapters vs none: %.3g\n",
           d_lora, lmax, d_base);
    assert_true(lmax > 0.0);    /* B = 0: B gets gradients (A does not yet) */
    assert_close(d_lora, 0, 0); /* the same computation */
    assert_close(d_base, 0, 0); /* B = 0 adds exact zeros */
    free(g_base);
    free(g_plain);
    free(lg1);
    free(lg2);
    activations_free(&a);
    lora_free(&ad);
    model_free(&m);
}

static void fixture_ints(const TestFixture *f, const char *name, int *out, size_t expect) {
    memcpy(out, test_fixture_get(f, name, 'i', expect), expect * 4);
}

static void fixture_floats(const TestFixture *f, const char *name, float *out, size_t expect) {
    memcpy(out, test_fixture_get(f, name, 'f', expect), expect * 4);
}

static double *fixture_doubles(const TestFixture *f, const char *name, size_t expect) {
    double *out = malloc(expect * sizeof(double));
    memcpy(out, test_fixture_get(f, name, 'd', expect), expect * 8);
    return out;
}

static TestFixture load_fixture(void) {
    return test_fixture_open(CUTKIT_SOURCE_DIR "/tests/fixtures/grad_fixture.bin");
}

/* max |c - ref| over n values, and that relative to max |ref| */
static double compare(const float *c, const double *ref, size_t n, double *ref_max) {
    double d = 0.0, rmax = 0.0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs(c[i] - ref[i]));
        rmax = fmax(rmax, fabs(ref[i]));
    }
    *ref_max = rmax;
    return d;
}

/* float32 forward and backward against float64 autograd: differences are float32 rounding,
 * ~1e-7 relative per operation over a few hundred operations (measured: <= 2e-6 of each
 * tensor's largest gradient). */
#define TORCH_TOLERANCE 2e-5

static void fixture_case(const TestFixture *f, const char *cs) {
    char name[200];
    int cfg[9];
    snprintf(name, sizeof name, "%s.config", cs);
    fixture_ints(f, name, cfg, 9);
    ModelConfig c = {cfg[0], cfg[1], cfg[2], cfg[3],   cfg[4],
                     cfg[5], cfg[6], 1e-5f,  10000.0f, (RopeStyle)cfg[7],
                     cfg[8]};
    Model m;
    CkError err = {{0}};
    assert_int_equal(model_init(&m, &c, &err), 0);
    for (int id = 0; id < PARAM_COUNT; id++) {
        if (m.tensors[id].size == 0) continue;
        snprintf(name, sizeof name, "%s.param.%s", cs, m.tensors[id].name);
        fixture_floats(f, name, m.params + m.tensors[id].offset, m.tensors[id].size);
    }
    int offsets[16], tokens[64], targets[64], kinds_i[64];
    const size_t n_off = test_fixture_read(f, "batch.offsets", 'i', NULL, 0);
    assert_true(n_off <= 16);
    fixture_ints(f, "batch.offsets", offsets, n_off);
    const int n_seqs = (int)n_off - 1, n = offsets[n_seqs];
    fixture_ints(f, "batch.tokens", tokens, (size_t)n);
    fixture_ints(f, "batch.targets", targets, (size_t)n);
    fixture_ints(f, "batch.kinds", kinds_i, (size_t)n);
    float weights[64], min_q;
    fixture_floats(f, "batch.weights", weights, (size_t)n);
    fixture_floats(f, "batch.ul_min_q", &min_q, 1);
    LossKind kinds[64];
    for (int i = 0; i < n; i++) kinds[i] = (LossKind)kinds_i[i];
    TokenBatch b = {n_seqs, offsets, tokens};
    double logprobs[64];
    LossSpec loss = {.targets = targets,
                     .kinds = kinds,
                     .weights = weights,
                     .ul_min_q = min_q,
                     .logprobs = logprobs};

    snprintf(name, sizeof name, "%s.lora_config", cs);
    char type;
    size_t count;
    const int has_lora = test_fixture_lookup(f, name, &type, &count) != NULL;
    LoraAdapters ad = {0};
    if (has_lora) {
        int lcfg[2];
        float alpha;
        fixture_ints(f, name, lcfg, 2);
        snprintf(name, sizeof name, "%s.lora_alpha", cs);
        fixture_floats(f, name, &alpha, 1);
        LoraConfig lc = {lcfg[0], alpha, 0.0f, (unsigned)lcfg[1]};
        assert_int_equal(lora_init(&ad, &m, &lc, 1, &err), 0);
        for (int i = 0; i < ad.n_tensors; i++) {
            snprintf(name, sizeof name, "%s.lora.%s", cs, ad.tensors[i].name);
            fixture_floats(f, name, ad.params + ad.tensors[i].offset, ad.tensors[i].size);
        }
    }
    Activations a;
    assert_int_equal(activations_init(&a, &m, n, c.seq_len, 1, &err), 0);
    float *grads = has_lora ? NULL : calloc(m.n_params, sizeof(float));
    float *lgrads = has_lora ? calloc(ad.n_params, sizeof(float)) : NULL;
    LossResult res;
    assert_int_equal(
        model_forward_backward(&m, &a, &b, &loss, grads, has_lora ? &ad : NULL, lgrads, &res, &err),
        0);
    snprintf(name, sizeof name, "%s.loss", cs);
    double *ref_loss = fixture_doubles(f, name, 1);
    snprintf(name, sizeof name, "%s.logprobs", cs);
    double *ref_lp = fixture_doubles(f, name, (size_t)n);
    double lp_diff = 0.0;
    for (int i = 0; i < n; i++) lp_diff = fmax(lp_diff, fabs(logprobs[i] - ref_lp[i]));
    printf("%s: loss %.8f, torch %.8f (diff %.2e); max |log p diff| %.2e\n", cs, res.loss,
           ref_loss[0], fabs(res.loss - ref_loss[0]), lp_diff);
    assert_close(res.loss, ref_loss[0], 1e-5 * fabs(ref_loss[0]));
    assert_close(lp_diff, 0, 1e-5);
    double worst = 0.0;
    if (!has_lora) {
        for (int id = 0; id < PARAM_COUNT; id++) {
            const ParamTensor *t = &m.tensors[id];
            if (t->size == 0) continue;
            snprintf(name, sizeof name, "%s.grad.%s", cs, t->name);
            double *ref = fixture_doubles(f, name, t->size), rmax;
            double d = compare(grads + t->offset, ref, t->size, &rmax);
            printf("  %-16s max|g| %.3e  max|diff| %.2e  (%.2e relative)\n", t->name, rmax, d,
                   d / rmax);
            worst = fmax(worst, d / rmax);
            free(ref);
        }
    } else {
        for (int i = 0; i < ad.n_tensors; i++) {
            const LoraTensor *t = &ad.tensors[i];
            snprintf(name, sizeof name, "%s.lora_grad.%s", cs, t->name);
            double *ref = fixture_doubles(f, name, t->size), rmax;
            double d = compare(lgrads + t->offset, ref, t->size, &rmax);
            printf("  %-62s max|g| %.3e  max|diff| %.2e  (%.2e)\n", t->name, rmax, d, d / rmax);
            worst = fmax(worst, d / rmax);
            free(ref);
        }
    }
    printf("  worst relative difference %.2e\n", worst);
    assert_close(worst, 0, TORCH_TOLERANCE);
    free(ref_loss);
    free(ref_lp);
    free(grads);
    free(lgrads);
    activations_free(&a);
    lora_free(&ad);
    model_free(&m);
}

static void test_torch_fixture(void **state) {
    (void)state;
    TestFixture f = load_fixture();
    fixture_case(&f, "full"); /* interleaved RoPE, separate classifier */
    fixture_case(&f, "half"); /* half-split RoPE, tied classifier */
    fixture_case(&f, "lora"); /* all seven modules, r = 4, alpha = 8, frozen base */
    free(f.data);
}

/* ---------------------------------------------------------------------------------------- */
/* accumulation, loss-only calls, threads, errors */

/* Two micro-batches accumulate to the gradient of their union (in one packed batch), the
 * loss-only call gives the same loss and model_score's log-probabilities, and 1 or 2
 * threads agree to float rounding. */
static void test_accumulation_threads_and_loss_only(void **state) {
    (void)state;
    ModelConfig c = tiny_config(16, 24, 2, 4, 2, 32, ROPE_INTERLEAVED, 1);
    Model m;
    CkError err = {{0}};
    assert_int_equal(model_init(&m, &c, &err), 0);
    randomize_model(&m, 81);
    const int lens[] = {9, 4, 12, 7};
    Batch all, first, second;
    make_batch(&all, lens, 4, c.vocab_size, MIX_MIXED, 82);
    /* the same sequences as two micro-batches of two sequences each */
    memset(&first, 0, sizeof first);
    memset(&second, 0, sizeof second);
    Batch *parts[2] = {&first, &second};
    for (int p = 0; p < 2; p++) {
        Batch *bt = parts[p];
        bt->n_seqs = 2;
        const int from = all.offsets[2 * p], to = all.offsets[2 * p + 2];
        for (int s = 0; s <= 2; s++) bt->offsets[s] = all.offsets[2 * p + s] - from;
        memcpy(bt->tokens, all.tokens + from, sizeof(int) * (size_t)(to - from));
        memcpy(bt->targets, all.targets + from, sizeof(int) * (size_t)(to - from));
        memcpy(bt->kinds, all.kinds + from, sizeof(LossKind) * (size_t)(to - from));
        memcpy(bt->weights, all.weights + from, sizeof(float) * (size_t)(to - from));
        bt->batch = (TokenBatch){2, bt->offsets, bt->tokens};
        bt->loss = (LossSpec){.targets = bt->targets,
                              .kinds = bt->kinds,
                              .weights = bt->weights,
                              .ul_min_q = 0.0f,
                              .logprobs = NULL};
    }
    Activations a;
    assert_int_equal(activations_init(&a, &m, MAX_TOK, c.seq_len, 1, &err), 0);
    float *g_all = calloc(m.n_params, sizeof(float)), *g_acc = calloc(m.n_params, sizeof(float));
    float *g_one = calloc(m.n_params, sizeof(float));
    LossResult r_all, r1, r2, r_one, r_loss;
    threads_set(2);
    assert_int_equal(
        model_forward_backward(&m, &a, &all.batch, &all.loss, g_all, NULL, NULL, &r_all, &err), 0);
    assert_int_equal(
        model_forward_backward(&m, &a, &first.batch, &first.loss, g_acc, NULL, NULL, &r1, &err), 0);
    assert_int_equal(
        model_forward_backward(&m, &a, &second.batch, &second.loss, g_acc, NULL, NULL, &r2, &err),
        0);
    threads_set(1);
    assert_int_equal(
        model_forward_backward(&m, &a, &all.batch, &all.loss, g_one, NULL, NULL, &r_one, &err), 0);
    threads_set(0);
    double d_acc = 0.0, d_thr = 0.0, gmax = 0.0;
    for (size_t i = 0; i < m.n_params; i++) {
        d_acc = fmax(d_acc, fabs(g_all[i] - g_acc[i]));
        d_thr = fmax(d_thr, fabs(g_all[i] - g_one[i]));
        gmax = fmax(gmax, fabs(g_all[i]));
    }
    printf("max|g| %.3g; accumulated micro-batches vs one batch: %.3g; 1 vs 2 threads: %.3g\n",
           gmax, d_acc, d_thr);
    assert_close(d_acc, 0, 1e-5 * gmax);
    assert_close(d_thr, 0, 1e-5 * gmax);
    assert_float_equal(r_all.loss, r1.loss + r2.loss, 1e-6 * fabs(r_all.loss));
    assert_int_equal(r_all.n_mle, r1.n_mle + r2.n_mle);
    assert_int_equal(r_all.n_ul, r1.n_ul + r2.n_ul);
    /* loss only (no gradient buffer): same loss; log p as model_score computes it */
    double lp[MAX_TOK], lp_score[MAX_TOK];
    all.loss.logprobs = lp;
    assert_int_equal(
        model_forward_backward(&m, &a, &all.batch, &all.loss, NULL, NULL, NULL, &r_loss, &err), 0);
    assert_float_equal(r_loss.loss, r_all.loss, 1e-12);
    int score_targets[MAX_TOK];
    for (int i = 0; i < all.offsets[4]; i++)
        score_targets[i] = all.kinds[i] != LOSS_NONE ? all.targets[i] : -1;
    Activations eval;
    assert_int_equal(activations_init(&eval, &m, MAX_TOK, c.seq_len, 0, &err), 0);
    assert_int_equal(model_score(&m, &eval, &all.batch, score_targets, lp_score, &err), 0);
    double d_lp = 0.0;
    for (int i = 0; i < all.offsets[4]; i++) d_lp = fmax(d_lp, fabs(lp[i] - lp_score[i]));
    printf("loss-only log p vs model_score: %.3g\n", d_lp);
    assert_close(d_lp, 0, 1e-5);
    free(g_all);
    free(g_acc);
    free(g_one);
    activations_free(&a);
    activations_free(&eval);
    model_free(&m);
}

/* At a size where every parallel loop runs parallel (stories260K, 4 x 150 positions, mixed
 * kinds), 1 and 2 threads give the same gradients to float rounding: no reduction depends
 * on the split of the work. */
static void test_threads_at_scale(void **state) {
    (void)state;
    LanguageModel lm;
    CkError err = {{0}};
    assert_int_equal(lm_open(&lm, NULL, NULL, &err), 0);
    const Model *m = &lm.model;
    enum { S = 4, T = 150, N = S * T };
    int offsets[S + 1], *tokens = malloc(sizeof(int) * N), *targets = malloc(sizeof(int) * N);
    LossKind *kinds = malloc(sizeof(LossKind) * N);
    float *weights = malloc(sizeof(float) * N);
    Rng r;
    rng_seed(&r, 111);
    for (int s = 0; s <= S; s++) offsets[s] = s * T;
    for (int i = 0; i < N; i++) tokens[i] = (int)(rng_next(&r) % 512);
    for (int i = 0; i < N; i++) {
        targets[i] = (i + 1) % T ? tokens[i + 1] : -1;
        kinds[i] = targets[i] < 0 ? LOSS_NONE : (LossKind)(1 + rng_next(&r) % 2);
        weights[i] = 1.0f / N;
    }
    TokenBatch b = {S, offsets, tokens};
    LossSpec loss = {
        .targets = targets, .kinds = kinds, .weights = weights, .ul_min_q = 0.0f, .logprobs = NULL};
    Activations a;
    assert_int_equal(activations_init(&a, m, N, T, 1, &err), 0);
    float *g1 = calloc(m->n_params, sizeof(float)), *g2 = calloc(m->n_params, sizeof(float));
    LossResult r1, r2;
    threads_set(1);
    assert_int_equal(model_forward_backward(m, &a, &b, &loss, g1, NULL, NULL, &r1, &err), 0);
    threads_set(2);
    assert_int_equal(model_forward_backward(m, &a, &b, &loss, g2, NULL, NULL, &r2, &err), 0);
    threads_set(0);
    double d = 0.0, gmax = 0.0;
    for (size_t i = 0; i < m->n_params; i++) {
        d = fmax(d, fabs(g1[i] - g2[i]));
        gmax = fmax(gmax, fabs(g1[i]));
    }
    printf("stories260K, %d positions: loss %.6f vs %.6f; max |g| %.3g, 1 vs 2 threads %.3g\n", N,
           r1.loss, r2.loss, gmax, d);
    assert_float_equal(r1.loss, r2.loss, 1e-6 * fabs(r1.loss));
    assert_close(d, 0, 1e-5 * gmax);
    free(g1);
    free(g2);
    free(tokens);
    free(targets);
    free(kinds);
    free(weights);
    activations_free(&a);
    lm_close(&lm);
}

static void test_errors(void **state) {
    (void)state;
    ModelConfig c = tiny_config(12, 10, 1, 3, 1, 11, ROPE_INTERLEAVED, 1);
    Model m;
    CkError err = {{0}};
    assert_int_equal(model_init(&m, &c, &err), 0);
    randomize_model(&m, 91);
    Batch bt;
    make_batch(&bt, RAGGED, 4, c.vocab_size, MIX_MLE_PROMPT, 92);
    Activations eval, train;
    assert_int_equal(activations_init(&eval, &m, MAX_TOK, 16, 0, &err), 0);
    assert_int_equal(activations_init(&train, &m, MAX_TOK, 16, 1, &err), 0);
    float *g = calloc(m.n_params, sizeof(float));
    assert_int_equal(
        model_forward_backward(&m, &eval, &bt.batch, &bt.loss, g, NULL, NULL, NULL, &err), -1);
    assert_string_equal(err.msg, "a training forward needs activations that keep every layer");
    assert_int_equal(model_forward(&m, &train, &bt.batch, NULL, NULL, &err), 0);
    assert_int_equal(model_backward(&m, &train, &bt.batch, &bt.loss, g, NULL, NULL, NULL, &err),
                     -1);
    assert_string_equal(err.msg, "backward without a training forward (model_forward_train)");
    bt.kinds[0] = LOSS_MLE;
    bt.targets[0] = 11;
    assert_int_equal(
        model_forward_backward(&m, &train, &bt.batch, &bt.loss, g, NULL, NULL, NULL, &err), -1);
    assert_string_equal(err.msg, "target id 11 at packed position 0 (loss kind 1) outside 0..10");
    bt.targets[0] = -1;
    assert_int_equal(
        model_forward_backward(&m, &train, &bt.batch, &bt.loss, g, NULL, NULL, NULL, &err), -1);
    assert_string_equal(err.msg, "target id -1 at packed position 0 (loss kind 1) outside 0..10");
    bt.kinds[0] = (LossKind)7;
    assert_int_equal(
        model_forward_backward(&m, &train, &bt.batch, &bt.loss, g, NULL, NULL, NULL, &err), -1);
    assert_string_equal(err.msg, "unknown loss kind 7 at packed position 0");
    free(g);
    activations_free(&eval);
    activations_free(&train);
    model_free(&m);
}

/* ---------------------------------------------------------------------------------------- */
/* the engine learns */

/* Adam on the embedded stories260K drives the token-mean MLE loss of four short sequences
 * (their first two tokens a masked prompt) to almost nothing. */
static void test_overfit_four_sequences(void **state) {
    (void)state;
    LanguageModel lm;
    CkError err = {{0}};
    assert_int_equal(lm_open(&lm, NULL, NULL, &err), 0);
    Model *m = &lm.model;
    const int lens[] = {12, 9, 14, 10};
    Batch bt;
    make_batch(&bt, lens, 4, m->config.vocab_size, MIX_MLE_PROMPT, 101);
    Activations a;
    assert_int_equal(activations_init(&a, m, MAX_TOK, 16, 1, &err), 0);
    const size_t P = m->n_params;
    float *g = calloc(P, sizeof(float)), *mom = calloc(P, sizeof(float));
    float *vel = calloc(P, sizeof(float));
    const float lr = 3e-3f, b1 = 0.9f, b2 = 0.999f;
    double first = 0.0, last = 0.0;
    int steps = 0;
    for (int step = 1; step <= 150; step++) {
        memset(g, 0, P * sizeof(float));
        LossResult r;
        assert_int_equal(
            model_forward_backward(m, &a, &bt.batch, &bt.loss, g, NULL, NULL, &r, &err), 0);
        if (step == 1) first = r.loss;
        last = r.loss;
        steps = step;
        if (r.loss < 0.01) break;
        const float c1 = 1.0f - powf(b1, (float)step), c2 = 1.0f - powf(b2, (float)step);
        for (size_t i = 0; i < P; i++) {
            mom[i] = b1 * mom[i] + (1 - b1) * g[i];
            vel[i] = b2 * vel[i] + (1 - b2) * g[i] * g[i];
            m->params[i] -= lr * (mom[i] / c1) / (sqrtf(vel[i] / c2) + 1e-8f);
        }
    }
    printf("overfitting 4 sequences: mean MLE loss %.4f -> %.4f in %d steps\n", first, last, steps);
    assert_true(first > 2.0);
    assert_true(last < 0.05);
    free(g);
    free(mom);
    free(vel);
    activations_free(&a);
    lm_close(&lm);
}

int main(void) {
    threads_set(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_row_gradients),
        cmocka_unit_test(test_loss_row_wide),
        cmocka_unit_test(test_loss_row_floor_and_extremes),
        cmocka_unit_test(test_fd_interleaved_shared_mle_prompt),
        cmocka_unit_test(test_fd_half_split_unshared_mle_prompt),
        cmocka_unit_test(test_fd_unlikelihood_alone),
        cmocka_unit_test(test_fd_mixed_kinds_and_weights),
        cmocka_unit_test(test_fd_lora),
        cmocka_unit_test(test_fd_lora_dropout),
        cmocka_unit_test(test_lora_frozen_base_same_gradients),
        cmocka_unit_test(test_torch_fixture),
        cmocka_unit_test(test_accumulation_threads_and_loss_only),
        cmocka_unit_test(test_threads_at_scale),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_overfit_four_sequences),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
