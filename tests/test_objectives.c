/* test_objectives.c — the CUT paper's baselines and CUT's Table-4 ablations (train/OBJECTIVES.md):
 * every objective's loss and gradient against PyTorch autograd of its definition on a tiny
 * model (tests/fixtures/objectives_fixture.bin, make_objectives_fixture.py); DPO at identical
 * chosen/rejected (loss log 2, gradient 0) and at β -> 0 (loss log 2 − βΔ/2); the sequences of
 * forward prediction, hindsight and ILF against the tokenizer's encoding of the strings they
 * should be; pair and refinement files' bad input (file, line, field; nothing written); and
 * `train_run` end to end for each objective, config.json's "objective", DPO's reference
 * log-probs reused on resume. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/test_util.h"

#include "datasets/templates.h"
#include "formats/lm.h"
#include "model/backward.h"
#include "model/model.h"
#include "train/baselines.h"
#include "train/cut.h"
#include "train/dpo.h"
#include "train/pairs.h"
#include "train/train_run.h"
#include "util/threads.h"

#define FIX_MAX_N       128
#define TORCH_TOLERANCE 1e-5

static const char FIXTURE[] = CUTKIT_SOURCE_DIR "/tests/fixtures/objectives_fixture.bin";

/* The fixture's tiny model. */
static void fixture_model(const TestFixture *f, Model *m) {
    int cfg[9];
    test_fixture_read(f, "model.config", 'i', cfg, 9);
    ModelConfig c = {cfg[0], cfg[1], cfg[2], cfg[3],   cfg[4],
                     cfg[5], cfg[6], 1e-5f,  10000.0f, (RopeStyle)cfg[7],
                     cfg[8]};
    CkError err = {{0}};
    assert_int_equal(model_init(m, &c, &err), 0);
    for (int id = 0; id < PARAM_COUNT; id++) {
        const ParamTensor *t = &m->tensors[id];
        if (t->size == 0) continue;
        char name[200];
        snprintf(name, sizeof name, "model.param.%s", t->name);
        test_fixture_read(f, name, 'f', m->params + t->offset, t->size);
    }
}

/* One packed batch of a case. */
typedef struct {
    int offsets[16], tokens[FIX_MAX_N], targets[FIX_MAX_N];
    CutPair pairs[8];
    int n_seqs, n, n_pairs;
    double options[3], ref[8], loss;
} Case;

static void read_case(const TestFixture *f, const char *cs, Case *c) {
    char name[200];
    memset(c, 0, sizeof *c);
    snprintf(name, sizeof name, "%s.offsets", cs);
    c->n_seqs = (int)test_fixture_read(f, name, 'i', c->offsets, 0) - 1;
    c->n = c->offsets[c->n_seqs];
    assert_true(c->n <= FIX_MAX_N);
    snprintf(name, sizeof name, "%s.tokens", cs);
    test_fixture_read(f, name, 'i', c->tokens, (size_t)c->n);
    snprintf(name, sizeof name, "%s.targets", cs);
    test_fixture_read(f, name, 'i', c->targets, (size_t)c->n);
    int pairs[16];
    snprintf(name, sizeof name, "%s.pairs", cs);
    c->n_pairs = (int)test_fixture_read(f, name, 'i', pairs, 0) / 2;
    for (int k = 0; k < c->n_pairs; k++) c->pairs[k] = (CutPair){pairs[2 * k], pairs[2 * k + 1]};
    snprintf(name, sizeof name, "%s.options", cs);
    test_fixture_read(f, name, 'd', c->options, 3);
    snprintf(name, sizeof name, "%s.ref", cs);
    test_fixture_read(f, name, 'd', c->ref, 0);
    snprintf(name, sizeof name, "%s.loss", cs);
    test_fixture_read(f, name, 'd', &c->loss, 1);
}

/* The worst relative difference of grads to the case's gradients, tensor by tensor. */
static double grad_difference(const TestFixture *f, const char *cs, const Model *m,
                              const float *grads) {
    double worst = 0.0;
    float *ref = malloc(sizeof(float) * m->n_params);
    for (int id = 0; id < PARAM_COUNT; id++) {
        const ParamTensor *t = &m->tensors[id];
        if (t->size == 0) continue;
        char name[200];
        snprintf(name, sizeof name, "%s.grad.%s", cs, t->name);
        test_fixture_read(f, name, 'f', ref, t->size);
        double d = 0.0, rmax = 0.0;
        for (size_t i = 0; i < t->size; i++) {
            d = fmax(d, fabs((double)grads[t->offset + i] - ref[i]));
            rmax = fmax(rmax, fabs(ref[i]));
        }
        worst = fmax(worst, rmax > 0 ? d / rmax : d);
    }
    free(ref);
    return worst;
}

/* cutkit's step on a case: kind 'm' the token-mean MLE every baseline MLE objective trains
 * with (the trainer weighs each target 1 / targets), 'd' DPO (the trainer's path: forward,
 * log p, dpo_assign_weights, backward); returns the loss, accumulates the gradient in grads. */
static double step(const Model *m, const Case *c, char kind, float *grads) {
    Activations a;
    CkError err = {{0}};
    assert_int_equal(activations_init(&a, m, c->n, m->config.seq_len, 1, &err), 0);
    TokenBatch b = {c->n_seqs, c->offsets, c->tokens};
    double logprobs[FIX_MAX_N];
    float weights[FIX_MAX_N];
    LossSpec spec = {.targets = c->targets, .weights = weights};
    LossResult res;
    double loss = 0.0;
    assert_int_equal(model_forward_train(m, &a, &b, NULL, &err), 0);
    if (kind == 'm') {
        int n_targets = 0;
        for (int i = 0; i < c->n; i++) n_targets += c->targets[i] >= 0;
        for (int i = 0; i < c->n; i++) weights[i] = c->targets[i] >= 0 ? 1.0f / n_targets : 0.0f;
    } else {
        DpoStats st = {0};
        assert_int_equal(model_logprobs(m, &a, c->targets, logprobs, &err), 0);
        assert_int_equal(dpo_assign_weights(&b, c->targets, logprobs, c->pairs, c->n_pairs, c->ref,
                                            c->options[2], c->n_pairs, weights, &st, &err),
                         0);
        loss = st.loss / c->n_pairs;
    }
    assert_int_equal(model_backward(m, &a, &b, &spec, grads, NULL, NULL, &res, &err), 0);
    if (kind == 'm') loss = res.loss;
    activations_free(&a);
    return loss;
}

/* cutkit's CUT step with the ablation of case cs (fused or not); returns the loss. */
static double cut_step(const Model *m, const Case *c, const char *cs, int fused, float *grads) {
    Activations a;
    CkError err = {{0}};
    assert_int_equal(activations_init(&a, m, c->n, m->config.seq_len, 1, &err), 0);
    TokenBatch b = {c->n_seqs, c->offsets, c->tokens};
    double logprobs[FIX_MAX_N], base[FIX_MAX_N];
    float weights[FIX_MAX_N];
    LossKind kinds[FIX_MAX_N];
    int partner[FIX_MAX_N];
    CutOptions o = cut_default_options();
    o.lambda = c->options[0];
    o.alpha = c->options[1];
    o.no_l1 = !strcmp(cs, "no_l1");
    o.no_align_n_mle = !strcmp(cs, "no_align_n_mle");
    o.no_detection = !strcmp(cs, "no_detection");
    LossSpec spec;
    CutStats st;
    CutFused fs;
    LossResult res;
    assert_int_equal(model_forward_train(m, &a, &b, NULL, &err), 0);
    if (fused) {
        assert_int_equal(cut_plan_fused(&b, c->targets, c->pairs, c->n_pairs, &o, kinds, weights,
                                        partner, base, logprobs, &fs, &spec, &err),
                         0);
        assert_int_equal(model_backward(m, &a, &b, &spec, grads, NULL, NULL, &res, &err), 0);
        assert_int_equal(cut_assign_loss(&b, c->targets, logprobs, c->pairs, c->n_pairs, &o, kinds,
                                         weights, &spec, &st, &err),
                         0);
    } else {
        assert_int_equal(model_logprobs(m, &a, c->targets, logprobs, &err), 0);
        assert_int_equal(cut_assign_loss(&b, c->targets, logprobs, c->pairs, c->n_pairs, &o, kinds,
                                         weights, &spec, &st, &err),
                         0);
        assert_int_equal(model_backward(m, &a, &b, &spec, grads, NULL, NULL, &res, &err), 0);
    }
    assert_int_equal(st.n_flagged, res.n_ul);
    if (o.no_detection) assert_int_equal(st.n_flagged, st.n_m_tokens);
    if (o.no_l1) assert_int_equal(res.n_ul, 0);
    activations_free(&a);
    return res.loss;
}

static void check_case(const TestFixture *f, const Model *m, const char *cs, char kind, int fused,
                       int threads) {
    threads_set(threads);
    Case c;
    read_case(f, cs, &c);
    float *grads = calloc(m->n_params, sizeof(float));
    const double loss = kind == 'c' ? cut_step(m, &c, cs, fused, grads) : step(m, &c, kind, grads);
    const double worst = grad_difference(f, cs, m, grads);
    printf("%-15s%s (%d thread%s): loss %.10f, torch %.10f (diff %.1e); worst relative "
           "gradient difference %.2e\n",
           cs, fused ? " fused" : "", threads, threads > 1 ? "s" : "", loss, c.loss,
           fabs(loss - c.loss), worst);
    assert_close(loss, c.loss, 1e-5 * fabs(c.loss));
    assert_true(worst < TORCH_TOLERANCE);
    free(grads);
    threads_set(0);
}

static void test_torch_fixture(void **state) {
    (void)state;
    TestFixture f = test_fixture_open(FIXTURE);
    Model m;
    fixture_model(&f, &m);
    for (int threads = 1; threads <= 2; threads++) {
        check_case(&f, &m, "mle", 'm', 0, threads);
        check_case(&f, &m, "dpo", 'd', 0, threads);
        check_case(&f, &m, "dpo_beta", 'd', 0, threads);
        check_case(&f, &m, "dpo_tiny_beta", 'd', 0, threads);
        for (int fused = 0; fused < 2; fused++) {
            check_case(&f, &m, "no_l1", 'c', fused, threads);
            check_case(&f, &m, "no_align_n_mle", 'c', fused, threads);
            check_case(&f, &m, "no_detection", 'c', fused, threads);
        }
    }
    model_free(&m);
    free(f.data);
}

/* DPO with the chosen sequence as its own rejected one (and equal reference log-probs): z is 0,
 * so the loss is log 2 at any β and the two halves of the gradient cancel. The two copies sit
 * at different rows of the packed batch, whose float32 products may round differently, so
 * "0" is checked against the size of one half: β/2 ∇π_c (from a token-mean MLE step on the
 * sequence alone, times its target count). */
static void test_dpo_identical_pair(void **state) {
    (void)state;
    TestFixture f = test_fixture_open(FIXTURE);
    Model m;
    fixture_model(&f, &m);
    Case c;
    read_case(&f, "dpo", &c);
    const int len = c.offsets[1];
    Case one = c; /* the batch's first sequence alone */
    one.n_seqs = 1;
    one.n = len;
    int n_targets = 0;
    for (int i = 0; i < len; i++) n_targets += c.targets[i] >= 0;
    float *g1 = calloc(m.n_params, sizeof(float));
    step(&m, &one, 'm', g1);
    double half = 0.0; /* max |∇π_c| */
    for (size_t i = 0; i < m.n_params; i++) half = fmax(half, fabs(g1[i]) * n_targets);
    Case d = c; /* that sequence, twice */
    memcpy(d.tokens + len, c.tokens, sizeof(int) * (size_t)len);
    memcpy(d.targets + len, c.targets, sizeof(int) * (size_t)len);
    d.offsets[2] = 2 * len;
    d.n_seqs = 2;
    d.n = 2 * len;
    d.n_pairs = 1;
    d.pairs[0] = (CutPair){0, 1};
    d.ref[0] = d.ref[1] = -7.25;
    for (int k = 0; k < 2; k++) {
        const double beta = k ? 5.0 : 0.1;
        d.options[2] = beta;
        float *grads = calloc(m.n_params, sizeof(float));
        const double loss = step(&m, &d, 'd', grads);
        double gmax = 0.0;
        for (size_t i = 0; i < m.n_params; i++) gmax = fmax(gmax, fabs(grads[i]));
        printf("identical pair, beta %g: loss %.12f (log 2 = %.12f), max |gradient| %.2e, "
               "%.2e of one half's (beta/2 max |grad pi_c| = %.3e)\n",
               beta, loss, log(2.0), gmax, gmax / (beta / 2 * half), beta / 2 * half);
        assert_close(loss, log(2.0), beta * 1e-5);
        assert_true(gmax < 1e-5 * (beta / 2 * half));
        free(grads);
    }
    free(g1);
    model_free(&m);
    free(f.data);
}

/* β -> 0: −log σ(z) = log 2 − z/2 + O(z²), so the loss tends to log 2 − β·mean(Δ)/2 with
 * Δ = (π_c − r_c) − (π_r − r_r), and the gradient divided by β to that of mean(π_c − π_r)/2. */
static void test_dpo_small_beta(void **state) {
    (void)state;
    TestFixture f = test_fixture_open(FIXTURE);
    Model m;
    fixture_model(&f, &m);
    Case c;
    read_case(&f, "dpo", &c);
    Activations a;
    CkError err = {{0}};
    assert_int_equal(activations_init(&a, &m, c.n, m.config.seq_len, 1, &err), 0);
    TokenBatch b = {c.n_seqs, c.offsets, c.tokens};
    double logprobs[FIX_MAX_N];
    float weights[FIX_MAX_N];
    assert_int_equal(model_forward_train(&m, &a, &b, NULL, &err), 0);
    assert_int_equal(model_logprobs(&m, &a, c.targets, logprobs, &err), 0);
    double mean_delta = 0.0;
    for (int k = 0; k < c.n_pairs; k++) {
        double pc = 0.0, pr = 0.0;
        for (int i = c.offsets[c.pairs[k].seq_a]; i < c.offsets[c.pairs[k].seq_a + 1]; i++)
            pc += c.targets[i] >= 0 ? logprobs[i] : 0.0;
        for (int i = c.offsets[c.pairs[k].seq_m]; i < c.offsets[c.pairs[k].seq_m + 1]; i++)
            pr += c.targets[i] >= 0 ? logprobs[i] : 0.0;
        mean_delta += ((pc - c.ref[2 * k]) - (pr - c.ref[2 * k + 1])) / c.n_pairs;
    }
    const double beta = 1e-7;
    DpoStats st = {0};
    assert_int_equal(dpo_assign_weights(&b, c.targets, logprobs, c.pairs, c.n_pairs, c.ref, beta,
                                        c.n_pairs, weights, &st, &err),
                     0);
    const double loss = st.loss / c.n_pairs;
    printf("beta %g: loss %.15f, log 2 - beta mean(delta) / 2 = %.15f (mean delta %.6f)\n", beta,
           loss, log(2.0) - beta * mean_delta / 2, mean_delta);
    assert_close(loss, log(2.0) - beta * mean_delta / 2, 1e-13);
    /* each token weight tends to ±β / (2 n) */
    for (int i = 0; i < c.n; i++)
        if (c.targets[i] >= 0) assert_close(fabs(weights[i]) / beta, 0.5 / c.n_pairs, 1e-6);
    activations_free(&a);
    model_free(&m);
    free(f.data);
}

/* ---- the sequences -------------------------------------------------------------------- */

/* Checks seq (tokens/trained over [begin, end) of c) against BOS + text + EOS with the first
 * `prompt` tokens untrained, as the reference tokenizes. */
static void check_sequence(const Tokenizer *tok, const Corpus *c, int s, const char *prompt,
                           const char *response) {
    CkError err = {{0}};
    char *full = malloc(strlen(prompt) + strlen(response) + 1);
    strcpy(full, prompt);
    strcat(full, response);
    int *ids = NULL, n = 0, *pids = NULL, pn = 0;
    assert_int_equal(tokenizer_encode(tok, full, 1, 1, &ids, &n, &err), 0);
    assert_int_equal(tokenizer_encode(tok, prompt, 1, 0, &pids, &pn, &err), 0);
    const int begin = c->offsets[s];
    assert_int_equal(c->offsets[s + 1] - begin, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(c->tokens[begin + i], ids[i]);
        assert_int_equal(c->train[begin + i], i >= pn);
    }
    free(ids);
    free(pids);
    free(full);
}

static void test_sequences(void **state) {
    (void)state;
    LanguageModel lm;
    CkError err = {{0}};
    assert_int_equal(lm_open(&lm, NULL, NULL, &err), 0);
    Template tpl;
    assert_int_equal(template_default(&tpl, &err), 0);
    JudgmentRecord recs[2] = {
        {.instruction = "Name a color.", .output = "Blue.", .judgment = "Too short."},
        {.instruction = "Say hi.", .input = "politely", .output = "Hello there."},
    };
    JudgmentSet set = {.records = recs, .n = 2};
    char *plain0 = template_format(tpl.prompt_no_input, "Name a color.", NULL, &err);
    char *judge0 = template_format(tpl.prompt_no_input_judge, "Name a color.", "Too short.", &err);
    char *plain1 = template_format(tpl.prompt_no_input, "Say hi.\npolitely", NULL, &err);
    Corpus c;
    BaselineStats st;
    assert_int_equal(baselines_build_mle(BASELINE_FORWARD_PREDICTION, &set, NULL, &tpl,
                                         &lm.tokenizer, 2048, &c, &st, &err),
                     0);
    check_sequence(&lm.tokenizer, &c, 0, plain0, "Blue.\n\n### Judgment:\nToo short.");
    check_sequence(&lm.tokenizer, &c, 1, plain1,
                   "Hello there.\n\n### Judgment:\nYour response to the instruction is "
                   "satisfactory.");
    corpus_free(&c);
    assert_int_equal(baselines_build_mle(BASELINE_HINDSIGHT, &set, NULL, &tpl, &lm.tokenizer, 2048,
                                         &c, &st, &err),
                     0);
    check_sequence(&lm.tokenizer, &c, 0, judge0, "Blue.");
    check_sequence(&lm.tokenizer, &c, 1, plain1, "Hello there.");
    corpus_free(&c);
    PairRecord pr = {
        .instruction = "Name a color.", .chosen = "Blue, like the sky.", .rejected = "Blue."};
    PairSet pairs = {.records = &pr, .n = 1};
    assert_int_equal(baselines_build_mle(BASELINE_ILF_MLE, NULL, &pairs, &tpl, &lm.tokenizer, 2048,
                                         &c, &st, &err),
                     0);
    check_sequence(&lm.tokenizer, &c, 0, plain0, "Blue, like the sky.");
    corpus_free(&c);
    CutExample *ex = NULL;
    assert_int_equal(baselines_build_pairs(&pairs, &tpl, &lm.tokenizer, 2048, &ex, &st, &err), 0);
    assert_int_equal(ex[0].negative, 1);
    assert_true(ex[0].a.n > ex[0].m.n);
    baselines_free_pairs(ex, 1);
    free(plain0);
    free(judge0);
    free(plain1);
    template_free(&tpl);
    lm_close(&lm);
}

/* ---- pair files: bad input --------------------------------------------------------------- */

/* Loads text as a pair file of kind; returns pairs_load's result with the message in msg. */
static int load_text(const char *dir, const char *text, PairFileKind kind, PairSet *s, char *msg,
                     size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/pairs.jsonl", dir);
    assert_int_equal(test_write_file(path, text, strlen(text)), 0);
    CkError err = {{0}};
    const int rc = pairs_load(s, path, kind, NULL, &err);
    snprintf(msg, n, "%s", err.msg);
    return rc;
}

static void expect_error(const char *dir, const char *text, PairFileKind kind, const char *where,
                         const char *field) {
    PairSet s;
    char msg[1200];
    assert_int_equal(load_text(dir, text, kind, &s, msg, sizeof msg), -1);
    printf("refused: %s\n", msg);
    assert_non_null(strstr(msg, where));
    assert_non_null(strstr(msg, field));
    assert_int_equal(s.n, 0);
}

static void test_pair_files(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    PairSet s;
    char msg[1200];
    /* every accepted shape, one pair each */
    const char *good =
        "{\"prompt\": \"P1\", \"chosen\": \"a\", \"rejected\": \"b\"}\n"
        "\n"
        "{\"instruction\": \"I2\", \"input\": \"x\", \"chosen\": \"c\", \"rejected\": \"d\"}\n"
        "{\"prompt\": \"P3\", \"chosen\": [{\"role\": \"user\", \"content\": \"P3\"}, {\"role\": "
        "\"assistant\", \"content\": \"e\"}], \"rejected\": [{\"role\": \"user\", \"content\": "
        "\"P3\"}, {\"role\": \"assistant\", \"content\": \"f\"}], \"score_chosen\": 8}\n"
        "{\"prompt\": [{\"role\": \"user\", \"content\": \"P4\"}], \"chosen\": [{\"role\": "
        "\"assistant\", \"content\": \"g\"}], \"rejected\": [{\"role\": \"assistant\", "
        "\"content\": \"h\"}]}\n";
    assert_int_equal(load_text(dir, good, PAIRS_PREFERENCE, &s, msg, sizeof msg), 0);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.records[3].instruction, "P4");
    assert_string_equal(s.records[3].chosen, "g");
    assert_string_equal(s.records[1].instruction, "I2");
    assert_string_equal(s.records[1].input, "x");
    assert_int_equal(s.records[1].line, 3);
    assert_string_equal(s.records[2].instruction, "P3");
    assert_string_equal(s.records[2].chosen, "e");
    assert_string_equal(s.records[2].rejected, "f");
    pairs_free(&s);
    char where[600];
    snprintf(where, sizeof where, "%s/pairs.jsonl:2", dir);
    expect_error(dir,
                 "{\"prompt\": \"P\", \"chosen\": \"a\", \"rejected\": \"b\"}\n"
                 "{\"prompt\": \"P\", \"chosen\": \"a\"}\n",
                 PAIRS_PREFERENCE, where, "\"rejected\"");
    expect_error(dir,
                 "{\"prompt\": \"P\", \"chosen\": \"a\", \"rejected\": \"b\"}\n"
                 "{\"chosen\": \"a\", \"rejected\": \"b\"}\n",
                 PAIRS_PREFERENCE, where, "\"prompt\"");
    /* chosen and rejected that share no prompt */
    expect_error(dir,
                 "{\"prompt\": \"P\", \"chosen\": \"a\", \"rejected\": \"b\"}\n"
                 "{\"chosen\": [{\"role\": \"user\", \"content\": \"Q1\"}, {\"role\": "
                 "\"assistant\", \"content\": \"a\"}], \"rejected\": [{\"role\": \"user\", "
                 "\"content\": \"Q2\"}, {\"role\": \"assistant\", \"content\": \"b\"}]}\n",
                 PAIRS_PREFERENCE, where, "share one prompt");
    expect_error(dir,
                 "{\"prompt\": \"P\", \"chosen\": \"a\", \"rejected\": \"b\"}\n"
                 "{\"prompt\": \"P\", \"chosen\": [{\"role\": \"user\", \"content\": \"Q\"}, "
                 "{\"role\": \"assistant\", \"content\": \"a\"}], \"rejected\": \"b\"}\n",
                 PAIRS_PREFERENCE, where, "share one prompt");
    expect_error(dir,
                 "{\"prompt\": \"P\", \"chosen\": \"a\", \"rejected\": \"b\"}\n"
                 "{\"prompt\": \"P\", \"chosen\": 3, \"rejected\": \"b\"}\n",
                 PAIRS_PREFERENCE, where, "\"chosen\"");
    /* refinement files: empty or null refinements are skipped and counted */
    const char *refined =
        "{\"instruction\": \"I\", \"input\": \"\", \"output\": \"o\", \"judgment\": \"j\", "
        "\"refinement\": \"r\", \"id\": 4}\n"
        "{\"instruction\": \"I\", \"input\": null, \"output\": \"o\", \"judgment\": \"j\", "
        "\"refinement\": null}\n"
        "{\"instruction\": \"I\", \"output\": \"o\", \"judgment\": null, \"refinement\": \"\"}\n";
    assert_int_equal(load_text(dir, refined, PAIRS_REFINEMENT, &s, msg, sizeof msg), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.n_no_refinement, 2);
    assert_string_equal(s.records[0].chosen, "r");
    assert_string_equal(s.records[0].rejected, "o");
    assert_null(s.records[0].input);
    pairs_free(&s);
    expect_error(dir,
                 "{\"instruction\": \"I\", \"output\": \"o\", \"judgment\": \"j\", "
                 "\"refinement\": \"r\"}\n{\"instruction\": \"I\", \"judgment\": \"j\", "
                 "\"refinement\": \"r\"}\n",
                 PAIRS_REFINEMENT, where, "\"output\"");
    expect_error(dir,
                 "{\"instruction\": \"I\", \"output\": \"o\", \"judgment\": \"j\", "
                 "\"refinement\": \"r\"}\n{\"instruction\": \"I\", \"output\": \"o\"}\n",
                 PAIRS_REFINEMENT, where, "\"refinement\"");
    snprintf(where, sizeof where, "%s/pairs.jsonl", dir);
    expect_error(dir, "{\"instruction\": \"I\", \"output\": \"o\", \"refinement\": null}\n",
                 PAIRS_REFINEMENT, where, "no pair");
    test_remove_dir(dir);
    free(dir);
}

/* ---- train_run end to end ---------------------------------------------------------------- */

static const char JUDGMENTS[] =
    "{\"instruction\": \"Tell a story about a cat.\", \"output\": \"The cat sat.\", "
    "\"judgment\": \"Too short, no story.\"}\n"
    "{\"instruction\": \"Name a color.\", \"input\": \"\", \"output\": \"Blue is a color.\", "
    "\"judgment\": null}\n"
    "{\"instruction\": \"Say hello.\", \"output\": \"Bye.\", \"judgment\": \"Wrong greeting.\"}\n";

static const char PAIRS[] =
    "{\"prompt\": \"Tell a story.\", \"chosen\": \"Once upon a time a cat slept.\", "
    "\"rejected\": \"No.\"}\n"
    "{\"instruction\": \"Say hello.\", \"input\": null, \"chosen\": \"Hello!\", \"rejected\": "
    "\"Bye.\"}\n";

static const char REFINED[] =
    "{\"instruction\": \"Say hello.\", \"input\": \"\", \"output\": \"Bye.\", \"judgment\": "
    "\"Wrong greeting.\", \"refinement\": \"Hello!\"}\n"
    "{\"instruction\": \"Name a color.\", \"input\": \"\", \"output\": \"Blue.\", \"judgment\": "
    "null, \"refinement\": null}\n"
    "{\"instruction\": \"Tell a story.\", \"input\": \"\", \"output\": \"No.\", \"judgment\": "
    "\"Not a story.\", \"refinement\": \"Once a cat slept.\"}\n";

/* Runs train_run with obj on file into out; returns its result (err filled). */
static int run(TrainObjective obj, const char *file, const char *out, int lora, int64_t stop_after,
               int resume, TrainReport *rep, CkError *err) {
    TrainRunOptions o;
    train_run_options_init(&o);
    o.objective = obj;
    if (train_objective_reads_judgments(obj))
        o.judgments = file;
    else
        o.data = file;
    o.out = out;
    o.steps = 3;
    o.batch_size = 2;
    o.micro_batch = 1;
    o.warmup = 0;
    o.lr = 1e-3;
    o.lora = lora;
    o.threads = 1;
    o.stop_after = stop_after;
    o.resume = resume;
    return train_run(&o, rep, err);
}

/* config.json's string field name of run directory out (malloc'd). */
static char *config_string(const char *out, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", out);
    size_t n;
    char *text = test_read_file(path, &n);
    assert_non_null(text);
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", name);
    char *p = strstr(text, key);
    assert_non_null(p);
    p = strchr(p + strlen(key), '"') + 1;
    char *e = strchr(p, '"');
    *e = '\0';
    char *v = strdup(p);
    free(text);
    return v;
}

static int exists(const char *dir, const char *name) {
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &sb) == 0;
}

static void test_train_run_objectives(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    char judg[1024], pairs[1024], refined[1024], out[2048];
    snprintf(judg, sizeof judg, "%s/j.jsonl", dir);
    snprintf(pairs, sizeof pairs, "%s/pairs.jsonl", dir);
    snprintf(refined, sizeof refined, "%s/refined.jsonl", dir);
    assert_int_equal(test_write_file(judg, JUDGMENTS, strlen(JUDGMENTS)), 0);
    assert_int_equal(test_write_file(pairs, PAIRS, strlen(PAIRS)), 0);
    assert_int_equal(test_write_file(refined, REFINED, strlen(REFINED)), 0);
    const struct {
        TrainObjective obj;
        const char *file;
        int lora;
    } runs[] = {
        {TRAIN_OBJECTIVE_FORWARD_PREDICTION, judg, 0},
        {TRAIN_OBJECTIVE_HINDSIGHT, judg, 1},
        {TRAIN_OBJECTIVE_DPO, pairs, 0},
        {TRAIN_OBJECTIVE_DPO, pairs, 1},
        {TRAIN_OBJECTIVE_ILF_MLE, refined, 0},
        {TRAIN_OBJECTIVE_ILF_DPO, refined, 1},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        TrainReport rep;
        CkError err = {{0}};
        snprintf(out, sizeof out, "%s/run%zu", dir, i);
        const int rc = run(runs[i].obj, runs[i].file, out, runs[i].lora, 0, 0, &rep, &err);
        if (rc != 0) printf("%s\n", err.msg);
        assert_int_equal(rc, 0);
        assert_int_equal(rep.steps_done, 3);
        assert_true(isfinite(rep.last_loss));
        char *objective = config_string(out, "objective");
        printf("%s%s: final loss %.6f\n", objective, runs[i].lora ? " (LoRA)" : "", rep.last_loss);
        assert_string_equal(objective, train_objective_name(runs[i].obj));
        free(objective);
        const int dpo =
            runs[i].obj == TRAIN_OBJECTIVE_DPO || runs[i].obj == TRAIN_OBJECTIVE_ILF_DPO;
        assert_int_equal(exists(out, "ref_logps.jsonl"), dpo);
        /* DPO starts at the reference: z = 0, loss log 2 on the first update */
        if (dpo) {
            char path[4096];
            snprintf(path, sizeof path, "%s/steps.jsonl", out);
            char *steps = test_read_file(path, NULL);
            const double first = strtod(strstr(steps, "\"loss\": ") + 8, NULL);
            assert_close(first, log(2.0), 1e-5);
            free(steps);
        }
    }
    test_remove_dir(dir);
    free(dir);
}

/* A DPO run stopped and resumed reuses its reference log-probs file and ends where an
 * uninterrupted run ends; a pair file with a bad line writes nothing in OUT. */
static void test_dpo_resume_and_bad_input(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    char pairs[1024], a[2048], b[2048];
    snprintf(pairs, sizeof pairs, "%s/pairs.jsonl", dir);
    assert_int_equal(test_write_file(pairs, PAIRS, strlen(PAIRS)), 0);
    snprintf(a, sizeof a, "%s/whole", dir);
    snprintf(b, sizeof b, "%s/resumed", dir);
    TrainReport whole, part, rest;
    CkError err = {{0}};
    assert_int_equal(run(TRAIN_OBJECTIVE_DPO, pairs, a, 0, 0, 0, &whole, &err), 0);
    assert_int_equal(run(TRAIN_OBJECTIVE_DPO, pairs, b, 0, 2, 0, &part, &err), 0);
    assert_true(part.stopped_early);
    char path[4096];
    snprintf(path, sizeof path, "%s/ref_logps.jsonl", b);
    char *before = test_read_file(path, NULL);
    assert_int_equal(run(TRAIN_OBJECTIVE_DPO, pairs, b, 0, 0, 1, &rest, &err), 0);
    char *after = test_read_file(path, NULL);
    assert_string_equal(before, after);
    printf("whole %.12f, resumed %.12f\n", whole.last_loss, rest.last_loss);
    assert_close(rest.last_loss, whole.last_loss, 1e-9);
    free(before);
    free(after);
    /* a bad line: the run fails naming it, and OUT holds no file of this run */
    const char bad[] = "{\"prompt\": \"P\", \"chosen\": \"a\", \"rejected\": \"b\"}\n"
                       "{\"prompt\": \"P\", \"chosen\": \"a\"}\n";
    assert_int_equal(test_write_file(pairs, bad, strlen(bad)), 0);
    snprintf(b, sizeof b, "%s/bad", dir);
    assert_int_equal(run(TRAIN_OBJECTIVE_DPO, pairs, b, 0, 0, 0, &rest, &err), -1);
    printf("refused: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "pairs.jsonl:2"));
    assert_non_null(strstr(err.msg, "\"rejected\""));
    assert_false(exists(b, "ref_logps.jsonl"));
    assert_false(exists(b, "steps.jsonl"));
    assert_false(exists(b, "config.json"));
    test_remove_dir(dir);
    free(dir);
}

/* CUT with each Table-4 ablation: runs, and config.json records it. */
static void test_cut_ablations_run(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    char judg[1024], out[2048];
    snprintf(judg, sizeof judg, "%s/j.jsonl", dir);
    assert_int_equal(test_write_file(judg, JUDGMENTS, strlen(JUDGMENTS)), 0);
    const char *names[5] = {"no_l1", "no_align_p", "no_align_n_mle", "no_detection",
                            "no_dynamic_weight"};
    for (int k = 0; k < 5; k++) {
        TrainRunOptions o;
        train_run_options_init(&o);
        o.objective = TRAIN_OBJECTIVE_CUT;
        o.judgments = judg;
        snprintf(out, sizeof out, "%s/%s", dir, names[k]);
        o.out = out;
        o.steps = 2;
        o.batch_size = 2;
        o.warmup = 0;
        o.threads = 1;
        o.cut.no_l1 = k == 0;
        o.no_align_p = k == 1;
        o.cut.no_align_n_mle = k == 2;
        o.cut.no_detection = k == 3;
        o.no_dynamic_weight = k == 4;
        o.cut.gamma = k == 4 ? 0.5 : 0.0;
        TrainReport rep;
        CkError err = {{0}};
        const int rc = train_run(&o, &rep, &err);
        if (rc != 0) printf("%s\n", err.msg);
        assert_int_equal(rc, 0);
        char path[4096];
        snprintf(path, sizeof path, "%s/config.json", out);
        char *text = test_read_file(path, NULL);
        char key[64];
        snprintf(key, sizeof key, "\"%s\":\ttrue", names[k]);
        assert_non_null(strstr(text, key));
        if (k == 1) assert_non_null(strstr(text, "\"positives_kept\":\t0"));
        if (k == 4) assert_non_null(strstr(text, "\"gamma\":\t0"));
        free(text);
    }
    /* an ablation needs --objective cut */
    TrainRunOptions o;
    train_run_options_init(&o);
    o.objective = TRAIN_OBJECTIVE_HINDSIGHT;
    o.judgments = judg;
    o.out = out;
    o.cut.no_detection = 1;
    CkError err = {{0}};
    assert_int_equal(train_run_check(&o, &err), -1);
    test_remove_dir(dir);
    free(dir);
}

/* The command: each objective from the flags, config.json's objective, and a bad pair file
 * refused with exit 1, its file, line and field. */
static void test_command(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    char judg[1024], pairs[1024], cmd[8192];
    snprintf(judg, sizeof judg, "%s/j.jsonl", dir);
    snprintf(pairs, sizeof pairs, "%s/pairs.jsonl", dir);
    const char synth[] =
        "{\"instruction\": \"Say hello.\", \"input\": \"\", \"output\": \"Bye.\", "
        "\"judgment\": \"Wrong.\", \"correct_output\": \"Hello!\"}\n"
        "{\"instruction\": \"Name a color.\", \"input\": \"\", \"output\": \"Blue.\", "
        "\"judgment\": null, \"correct_output\": \"Blue.\"}\n";
    assert_int_equal(test_write_file(judg, synth, strlen(synth)), 0);
    const char *runs[3] = {"forward-prediction --judgments %s", "hindsight --judgments %s",
                           "dpo --judgments %s --chosen-field correct_output"};
    const char *names[3] = {"forward-prediction", "hindsight", "dpo"};
    for (int k = 0; k < 3; k++) {
        char flags[2048];
        snprintf(flags, sizeof flags, runs[k], judg);
        snprintf(cmd, sizeof cmd,
                 "%s train --objective %s --out %s/run%d --steps 2 --batch-size 2 --warmup 0 "
                 "--threads 1",
                 CUTKIT_BINARY, flags, dir, k);
        char *out = NULL, *errout = NULL;
        const int rc = test_run(cmd, &out, &errout);
        if (rc != 0) printf("%s\n%s", cmd, errout);
        assert_int_equal(rc, 0);
        char run_dir[2048];
        snprintf(run_dir, sizeof run_dir, "%s/run%d", dir, k);
        char *objective = config_string(run_dir, "objective");
        assert_string_equal(objective, names[k]);
        free(objective);
        free(out);
        free(errout);
    }
    const char bad[] = "{\"prompt\": \"P\", \"chosen\": \"a\", \"rejected\": \"b\"}\n"
                       "{\"prompt\": \"P\", \"chosen\": \"a\", \"rejected\": 7}\n";
    assert_int_equal(test_write_file(pairs, bad, strlen(bad)), 0);
    snprintf(cmd, sizeof cmd, "%s train --objective dpo --data %s --out %s/bad --steps 2",
             CUTKIT_BINARY, pairs, dir);
    char *errout = NULL;
    assert_int_equal(test_run(cmd, NULL, &errout), 1);
    printf("%s", errout);
    assert_non_null(strstr(errout, "pairs.jsonl:2: field \"rejected\""));
    free(errout);
    test_remove_dir(dir);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torch_fixture),
        cmocka_unit_test(test_dpo_identical_pair),
        cmocka_unit_test(test_dpo_small_beta),
        cmocka_unit_test(test_sequences),
        cmocka_unit_test(test_pair_files),
        cmocka_unit_test(test_train_run_objectives),
        cmocka_unit_test(test_dpo_resume_and_bad_input),
        cmocka_unit_test(test_cut_ablations_run),
        cmocka_unit_test(test_command),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
