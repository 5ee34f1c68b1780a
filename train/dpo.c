/* dpo.c — see dpo.h. */
#include "train/dpo.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/hash.h"
#include "util/jsonl.h"

double dpo_loss(double z) {
    /* log(1 + e^-z): log1p(e^-z) for z > 0, -z + log1p(e^z) below, never exp of a large value */
    return z > 0 ? log1p(exp(-z)) : -z + log1p(exp(z));
}

/* Σ logprobs over the targets of sequence s. */
static double sequence_sum(const TokenBatch *b, const int *targets, const double *logprobs, int s) {
    double sum = 0.0;
    for (int i = b->offsets[s]; i < b->offsets[s + 1]; i++)
        if (targets[i] >= 0) sum += logprobs[i];
    return sum;
}

static void set_weights(const TokenBatch *b, const int *targets, int s, float w, float *weights) {
    for (int i = b->offsets[s]; i < b->offsets[s + 1]; i++) weights[i] = targets[i] >= 0 ? w : 0.0f;
}

int dpo_assign_weights(const TokenBatch *b, const int *targets, const double *logprobs,
                       const CutPair *pairs, int n_pairs, const double *ref, double beta,
                       int n_step, float *weights, DpoStats *st, CkError *err) {
    if (!(beta > 0.0)) return ck_fail(err, "DPO: beta must be positive (got %g)", beta);
    const int N = b->offsets[b->n_seqs];
    for (int i = 0; i < N; i++) weights[i] = 0.0f;
    const double n = n_step > 0 ? n_step : n_pairs;
    for (int k = 0; k < n_pairs; k++) {
        const int sc = pairs[k].seq_a, sr = pairs[k].seq_m;
        if (sc < 0 || sc >= b->n_seqs || sr < 0 || sr >= b->n_seqs || sc == sr)
            return ck_fail(err, "DPO pair %d: sequences %d and %d are not a pair of the batch", k,
                           sc, sr);
        const double pc = sequence_sum(b, targets, logprobs, sc);
        const double pr = sequence_sum(b, targets, logprobs, sr);
        const double rc = beta * (pc - ref[2 * k]), rr = beta * (pr - ref[2 * k + 1]);
        const double z = rc - rr;
        /* dloss/dπ_c = -β σ(-z): token MLE of weight β σ(-z) / n has that gradient */
        const double coef = beta / (1.0 + exp(z)) / n;
        set_weights(b, targets, sc, (float)coef, weights);
        set_weights(b, targets, sr, (float)-coef, weights);
        st->loss += dpo_loss(z);
        st->chosen_reward += rc;
        st->rejected_reward += rr;
        st->correct += z > 0;
    }
    return 0;
}

/* Packs the chosen and rejected sequences of ex into tokens/targets/offsets (2 sequences). */
static void pack_pair(const CutExample *ex, int *tokens, int *targets, int *offsets) {
    const CutSequence *seqs[2] = {&ex->a, &ex->m};
    int n = 0;
    offsets[0] = 0;
    for (int s = 0; s < 2; s++) {
        const CutSequence *q = seqs[s];
        for (int p = 0; p < q->n; p++) {
            tokens[n + p] = q->tokens[p];
            targets[n + p] = (p + 1 < q->n && q->trained[p + 1]) ? q->tokens[p + 1] : -1;
        }
        n += q->n;
        offsets[s + 1] = n;
    }
}

int dpo_reference_logps(const Model *m, const CutExample *ex, int n, double *ref, CkError *err) {
    int max_len = 1, max_tokens = 1;
    for (int k = 0; k < n; k++) {
        const int la = ex[k].a.n, lr = ex[k].m.n;
        if (la > max_len) max_len = la;
        if (lr > max_len) max_len = lr;
        if (la + lr > max_tokens) max_tokens = la + lr;
    }
    Activations a;
    if (activations_init(&a, m, max_tokens, max_len, 0, err) != 0) return -1;
    int *tokens = malloc(sizeof(int) * (size_t)max_tokens);
    int *targets = malloc(sizeof(int) * (size_t)max_tokens);
    double *logprobs = malloc(sizeof(double) * (size_t)max_tokens);
    int rc = tokens && targets && logprobs ? 0 : ck_fail(err, "out of memory");
    for (int k = 0; rc == 0 && k < n; k++) {
        int offsets[3];
        pack_pair(&ex[k], tokens, targets, offsets);
        const TokenBatch b = {2, offsets, tokens};
        rc = model_forward(m, &a, &b, NULL, NULL, err);
        if (rc == 0) rc = model_logprobs(m, &a, targets, logprobs, err);
        if (rc == 0) {
            ref[2 * k] = sequence_sum(&b, targets, logprobs, 0);
            ref[2 * k + 1] = sequence_sum(&b, targets, logprobs, 1);
            if (!isfinite(ref[2 * k]) || !isfinite(ref[2 * k + 1]))
                rc = ck_fail(err, "DPO reference: pair %d has a non-finite log-probability", k);
        }
    }
    free(tokens);
    free(targets);
    free(logprobs);
    activations_free(&a);
    return rc;
}

static uint64_t chain(uint64_t h, const void *p, size_t n) {
    return hash_fnv1a64(h, p, n);
}

uint64_t dpo_fingerprint(const Model *m, const CutExample *ex, int n) {
    uint64_t h = HASH_FNV1A64_OFFSET;
    const int shape[] = {n,
                         m->config.dim,
                         m->config.hidden_dim,
                         m->config.n_layers,
                         m->config.n_heads,
                         m->config.n_kv_heads,
                         m->config.vocab_size,
                         (int)m->config.rope_style};
    h = chain(h, shape, sizeof shape);
    for (int k = 0; k < n; k++) {
        const CutSequence *seqs[2] = {&ex[k].a, &ex[k].m};
        for (int s = 0; s < 2; s++) {
            h = chain(h, &seqs[s]->n, sizeof seqs[s]->n);
            h = chain(h, seqs[s]->tokens, sizeof(int) * (size_t)seqs[s]->n);
            h = chain(h, seqs[s]->trained, (size_t)seqs[s]->n);
        }
    }
    return chain(h, m->params, m->n_params * sizeof(float));
}

/* Reads one line's "pair", "chosen", "rejected" into ref; -1 with err naming the field. */
static int read_cache_line(const cJSON *o, const char *path, long line, int k, double *ref,
                           CkError *err) {
    const cJSON *pair = cJSON_GetObjectItemCaseSensitive(o, "pair");
    if (!cJSON_IsNumber(pair) || pair->valuedouble != k)
        return ck_fail(err, "%s:%ld: field \"pair\": expected %d", path, line, k);
    const char *names[2] = {"chosen", "rejected"};
    for (int s = 0; s < 2; s++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, names[s]);
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
            return ck_fail(err, "%s:%ld: field \"%s\": expected a finite number", path, line,
                           names[s]);
        ref[2 * k + s] = v->valuedouble;
    }
    return 0;
}

int dpo_cache_load(const char *path, uint64_t fingerprint, int n, double *ref, CkError *err) {
    FILE *probe = fopen(path, "rb");
    if (!probe) return 0;
    fclose(probe);
    size_t size = 0;
    char *text = fileio_read_text(path, (size_t)1 << 32, &size, err);
    if (!text) return -1;
    JsonlCursor c;
    jsonl_init(&c, text, size);
    cJSON *o = NULL;
    int rc = jsonl_next_object(&c, path, 0, &o, err);
    char want[32];
    snprintf(want, sizeof want, "%016" PRIx64, fingerprint);
    const cJSON *fp = rc == 1 ? cJSON_GetObjectItemCaseSensitive(o, "fingerprint") : NULL;
    const cJSON *np = rc == 1 ? cJSON_GetObjectItemCaseSensitive(o, "pairs") : NULL;
    const int same = cJSON_IsString(fp) && !strcmp(fp->valuestring, want) && cJSON_IsNumber(np) &&
                     np->valuedouble == n;
    cJSON_Delete(o);
    double *tmp = same ? malloc(sizeof(double) * (size_t)(2 * n + 1)) : NULL;
    if (rc < 0 || !same || !tmp) {
        free(text);
        free(tmp);
        if (same && rc >= 0) return ck_fail(err, "out of memory");
        return rc < 0 ? -1 : 0;
    }
    for (int k = 0; rc >= 0 && k < n; k++) {
        o = NULL;
        rc = jsonl_next_object(&c, path, 0, &o, err);
        if (rc == 0) rc = ck_fail(err, "%s: %d of %d pairs", path, k, n);
        if (rc == 1) rc = read_cache_line(o, path, c.line, k, tmp, err);
        cJSON_Delete(o);
    }
    if (rc >= 0) memcpy(ref, tmp, sizeof(double) * (size_t)(2 * n));
    free(tmp);
    free(text);
    return rc < 0 ? -1 : 1;
}

int dpo_cache_save(const char *path, uint64_t fingerprint, int n, const double *ref, CkError *err) {
    AtomicFile f;
    if (atomic_file_open(&f, path, err) != 0) return -1;
    fprintf(f.f, "{\"fingerprint\": \"%016" PRIx64 "\", \"pairs\": %d}\n", fingerprint, n);
    for (int k = 0; k < n; k++)
        fprintf(f.f, "{\"pair\": %d, \"chosen\": %.17g, \"rejected\": %.17g}\n", k, ref[2 * k],
                ref[2 * k + 1]);
    return atomic_file_commit(&f, err);
}
