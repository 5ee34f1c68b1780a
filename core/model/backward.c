/* backward.c — the backward pass of model.c's forward, and the token-level loss.
 *
 * Read top to bottom: the loss of one row of logits, the classifier fused with the loss,
 * then each block's backward next to a one-line reminder of its forward (the forward is in
 * model.c), and model_backward, which walks the layers in reverse. Shapes as in model.h:
 * N packed positions, C = dim, H = hidden_dim, KV = kv dim, V = vocab, hs = head size.
 *
 * Parallelism: matrix products go to BLAS outside parallel regions (its OpenMP threads);
 * element-wise and attention work runs in our own OpenMP loops, and BLAS calls made inside
 * those run single-threaded. Every reduction over positions runs in a fixed order, so the
 * result does not depend on the number of threads beyond BLAS's own rounding. */
#include "model/backward.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "model/attention.h"
#include "model/fastmath.h"
#include "model/matmul.h"
#include "util/threads.h"

/* Element-wise work below this many floats runs on one thread: at a few operations an
 * element it is under threads_for_work's floor (util/threads.h), where a parallel region's
 * fork and join (and, on a shared core, a descheduled thread) cost more than they save. */
#define PARALLEL_MIN_WORK ((long)(THREADS_MIN_FLOPS_PER_THREAD / 4))

/* ---------------------------------------------------------------------------------------- */
/* the loss of one row */

/* With e_j = exp(z_j - max) and S = sum_j e_j, p_j = e_j / S and
 *   MLE: l = -log p_t,      dl/dz_j = p_j - [j == t]
 *   UL:  l = -log(1 - p_t), dl/dz_j = p_t (1 - p_t)/(1 - p_t) = p_t              for j == t
 *                                     -p_t p_j / (1 - p_t) = -p_t e_j / S_other  for j != t
 * where S_other = sum_{j != t} e_j = S (1 - p_t). Summing S_other directly (not S - e_t)
 * keeps 1 - p_t and the UL gradient exact as p_t -> 1, where the gradient stays bounded
 * (|dl/dz| <= 1 per entry). */
double loss_row(const float *logits, int V, int target, LossKind kind, float weight, float min_q,
                float *dlogits, double *logp, int *floored) {
    if (floored) *floored = 0;
    const float maxv = max_of(logits, V);
    const float zt = logits[target];
    /* the exponentials on both sides of the target, so that their sum excludes it */
    const double s_other =
        exp_and_sum(dlogits, logits, target, maxv) +
        exp_and_sum(dlogits + target + 1, logits + target + 1, V - target - 1, maxv);
    const float et = exp_nonpositive(zt - maxv);
    dlogits[target] = et;
    const double s = s_other + et, lse = log(s);
    *logp = ((double)zt - maxv) - lse;
    if (kind == LOSS_MLE) {
        const float scale = (float)(weight / s);
        for (int j = 0; j < V; j++) dlogits[j] *= scale;
        dlogits[target] = (float)(-weight * (s_other / s)); /* w (p_t - 1), no cancellation */
        return -(double)weight * *logp;
    }
    if (kind != LOSS_UNLIKELIHOOD) {
        for (int j = 0; j < V; j++) dlogits[j] = 0.0f;
        return 0.0;
    }
    const double pt = et / s;
    double log_q; /* log(1 - p_t) */
    /* below 1e-20 the largest other exponential is < 1e-20 and the smallest ones would be
     * float denormals or flushed: too coarse for the direction of the gradient */
    if (s_other > 1e-20) {
        log_q = log(s_other) - lse;
        const float scale = (float)(-weight * pt / s_other);
        for (int j = 0; j < V; j++) dlogits[j] *= scale;
    } else {
        /* every other logit is far below the target's (by > 46 nats): redo the others
         * relative to their own maximum (rare; two more passes) */
        float max_other = -INFINITY;
        for (int j = 0; j < V; j++)
            if (j != target && logits[j] > max_other) max_other = logits[j];
        double s2 = 0.0;
        for (int j = 0; j < V; j++) {
            float e = j == target ? 0.0f : expf(logits[j] - max_other);
            dlogits[j] = e;
            s2 += e;
        }
        if (V == 1 || !(s2 > 0.0)) {
            log_q = -INFINITY; /* a one-token vocabulary: p = 1 always */
            for (int j = 0; j < V; j++) dlogits[j] = 0.0f;
        } else {
            log_q = ((double)max_other - maxv) + log(s2) - lse;
            const float scale = (float)(-weight * pt / s2);
            for (int j = 0; j < V; j++) dlogits[j] *= scale;
        }
    }
    dlogits[target] = (float)(weight * pt);
    if (min_q <= 0.0f) min_q = LOSS_UL_MIN_Q_DEFAULT;
    const double log_min = log((double)min_q);
    if (log_q < log_min) {
        log_q = log_min;
        if (floored) *floored = 1;
    }
    return -(double)weight * log_q;
}

/* ---------------------------------------------------------------------------------------- */
/* classifier + loss, fused */

static LossKind kind_at(const LossSpec *loss, int i) {
    if (loss->kinds) return loss->kinds[i];
    return loss->targets[i] >= 0 ? LOSS_MLE : LOSS_NONE;
}

/* Checks targets and kinds of the n positions against the vocabulary. */
static int loss_check(const LossSpec *loss, int n, int V, CkError *err) {
    if (!loss || !loss->targets) return ck_fail(err, "no loss targets given");
    if (loss->decide && !loss->logprobs)
        return ck_fail(err, "a loss with a decide hook needs a logprobs output");
    for (int i = 0; i < n; i++) {
        LossKind k = kind_at(loss, i);
        if (k != LOSS_NONE && k != LOSS_MLE && k != LOSS_UNLIKELIHOOD)
            return ck_fail(err, "unknown loss kind %d at packed position %d", (int)k, i);
        if (k != LOSS_NONE && (loss->targets[i] < 0 || loss->targets[i] >= V))
            return ck_fail(err, "target id %d at packed position %d (loss kind %d) outside 0..%d",
                           loss->targets[i], i, (int)k, V - 1);
    }
    return 0;
}

/* Rows with a loss term, block by block (no full (N, V) logits):
 *   logits (R, V) = xn (R, C) · Wcls^T;  dlogits (R, V) in place, row by row (loss_row);
 *   dxn (R, C) = dlogits · Wcls  -> scattered into dxn_final (N, C), zero on other rows;
 *   dWcls (V, C) += dlogits^T · xn.
 * dxn_final NULL: loss only; dwcls NULL: no classifier gradient. */
static void classifier_loss_backward(const Model *m, Activations *a, const LossSpec *loss,
                                     float *dxn_final, float *dwcls, LossResult *res) {
    const ModelConfig *c = &m->config;
    const int C = c->dim, V = c->vocab_size, n = a->n_tokens, R = a->logit_rows;
    const float min_q = loss->ul_min_q > 0.0f ? loss->ul_min_q : LOSS_UL_MIN_Q_DEFAULT;
    double *row_loss = a->d_row, *row_logp = a->d_row + R, *row_floored = a->d_row + 2 * R;
    double *row_kind = a->d_row + 3 * R, *row_weight = a->d_row + 4 * R;
    int *rows = a->block_rows;
    if (dxn_final) memset(dxn_final, 0, (size_t)n * C * sizeof(float));
    if (loss->logprobs)
        for (int i = 0; i < n; i++) loss->logprobs[i] = 0.0;
    int next = 0;
    while (next < n) {
        int count = 0;
        while (next < n && count < R) {
            if (kind_at(loss, next) != LOSS_NONE) {
                memcpy(a->stage + (size_t)count * C, a->xn_final + (size_t)next * C,
                       (size_t)C * sizeof(float));
                rows[count++] = next;
            }
            next++;
        }
        if (count == 0) continue;
        model_project(m, PARAM_WCLS, 0, a->logits, a->stage, count);
        const float cap = m->arch.final_softcap;
        if (cap > 0.0f) {
            /* Gemma 2: the loss sees cap tanh(z / cap); keep it for the chain rule below */
            model_softcap_logits(m, a->logits, (size_t)count * V);
            memcpy(a->logits_capped, a->logits, (size_t)count * V * sizeof(float));
        }
        /* each row's kind and weight: as given, or decided in position order from the log p
         * of this and earlier rows (read before any row of the block is overwritten) */
        for (int r = 0; r < count; r++) {
            row_kind[r] = kind_at(loss, rows[r]);
            row_weight[r] = loss->weights ? loss->weights[rows[r]] : 1.0f;
        }
        if (loss->decide) {
#pragma omp parallel for if ((long)count * V > PARALLEL_MIN_WORK)
            for (int r = 0; r < count; r++) {
                const float *z = a->logits + (size_t)r * V;
                const float maxv = max_of(z, V);
                row_logp[r] = ((double)z[loss->targets[rows[r]]] - maxv) - log(sum_exp(z, V, maxv));
            }
            for (int r = 0; r < count; r++) {
                LossKind k = (LossKind)row_kind[r];
                float w = (float)row_weight[r];
                loss->logprobs[rows[r]] = row_logp[r];
                loss->decide(loss->decide_ctx, rows[r], loss->logprobs, &k, &w);
                row_kind[r] = k;
                row_weight[r] = w;
            }
        }
#pragma omp parallel for if ((long)count * V > PARALLEL_MIN_WORK)
        for (int r = 0; r < count; r++) {
            float *z = a->logits + (size_t)r * V;
            int floored;
            double logp;
            row_loss[r] = loss_row(z, V, loss->targets[rows[r]], (LossKind)row_kind[r],
                                   (float)row_weight[r], min_q, z, &logp, &floored);
            if (!loss->decide) row_logp[r] = logp; /* decided rows keep the value decided on */
            row_floored[r] = floored;
        }
        /* sums in position order: independent of the thread count */
        for (int r = 0; r < count; r++) {
            const int i = rows[r];
            if ((LossKind)row_kind[r] == LOSS_MLE) {
                res->loss_mle += row_loss[r];
                res->n_mle++;
            } else if ((LossKind)row_kind[r] == LOSS_UNLIKELIHOOD) {
                res->loss_ul += row_loss[r];
                res->n_ul++;
                res->n_floored += row_floored[r] != 0.0;
            }
            res->loss += row_loss[r];
            if (loss->logprobs) loss->logprobs[i] = row_logp[r];
        }
        if (cap > 0.0f) {
            /* d z = d capped * (1 - tanh^2), tanh = capped / cap */
            const size_t total = (size_t)count * V;
            for (size_t i = 0; i < total; i++) {
                const float t = a->logits_capped[i] / cap;
                a->logits[i] *= 1.0f - t * t;
            }
        }
        if (dxn_final) {
            model_project_back(m, PARAM_WCLS, 0, a->d_stage, a->logits, count, 1);
            for (int r = 0; r < count; r++)
                memcpy(dxn_final + (size_t)rows[r] * C, a->d_stage + (size_t)r * C,
                       (size_t)C * sizeof(float));
        }
        if (dwcls) matmul_backward_weight(dwcls, a->logits, a->stage, count, C, V);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* the blocks' backward passes */

/* forward: out (N, C) = x * inv_rms * w, inv_rms = 1 / sqrt(mean(x^2) + eps), w = g + offset
 * (offset 1: Gemma's (1 + g)).
 * backward: dx (N, C) += inv dout*w - inv^3 / C * x * sum_k(dout_k w_k x_k);
 *           dg (C) += sum_i dout_i * x_i * inv_i (dg NULL: skipped). */
static void rmsnorm_backward(float *dx, float *dg, const float *dout, const float *x,
                             const float *inv_rms, const float *g, int n, int C, float offset) {
#pragma omp parallel for if ((long)n * C > PARALLEL_MIN_WORK)
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * C, *di = dout + (size_t)i * C;
        float *dxi = dx + (size_t)i * C;
        double dot = 0.0;
        for (int j = 0; j < C; j++) dot += (double)di[j] * (g[j] + offset) * xi[j];
        const float inv = inv_rms[i];
        const float coef = (float)((double)inv * inv * inv * dot / C);
        for (int j = 0; j < C; j++) dxi[j] += inv * di[j] * (g[j] + offset) - coef * xi[j];
    }
    if (!dg) return;
    /* column tiles, each summed over all rows in row order (no cross-thread reduction) */
    enum { TILE = 32 };
    const int tiles = (C + TILE - 1) / TILE;
#pragma omp parallel for if ((long)n * C > PARALLEL_MIN_WORK)
    for (int t = 0; t < tiles; t++) {
        const int j0 = t * TILE, j1 = j0 + TILE < C ? j0 + TILE : C;
        double acc[TILE] = {0};
        for (int i = 0; i < n; i++) {
            const float *xi = x + (size_t)i * C, *di = dout + (size_t)i * C;
            const double inv = inv_rms[i];
            for (int j = j0; j < j1; j++) acc[j - j0] += (double)di[j] * xi[j] * inv;
        }
        for (int j = j0; j < j1; j++) dg[j] += (float)acc[j - j0];
    }
}

/* forward (one sequence of T positions, one query head of a kv head, no cache):
 *   S (T, T) = scale Q K^T,  P = causal softmax(cap(S)),  O (T, hs) = P V,
 *   cap(s) = c tanh(s / c) with a soft cap c (else the identity); outside a sliding window P = 0.
 * backward, with dO (T, hs) given and ds (T, T) scratch:
 *   dP = dO V^T;  dV += P^T dO;  dS = P * (dP - rowsum(P * dP)) * cap'(S);
 *   dQ = scale dS K (overwrites);  dK += scale dS^T Q.
 * cap'(s) = 1 - tanh^2(s / c) needs S, which is recomputed for the keys the query saw.
 * h gives q, k, v and the forward's P (h->prob) with their strides; dq and dout have q's
 * stride, dk and dv k's. */
static void attention_head_backward(const AttentionHead *h, const float *dout, float *dq, float *dk,
                                    float *dv, float *ds) {
    const int T = h->T, hs = h->hs, ldp = h->ldp, ldq = h->ldq, ldkv = h->ldkv;
    const float scale = h->scale, cap = h->softcap;
    const float *prob = h->prob;
    matmul_strided(0, 1, T, T, hs, 1.0f, dout, ldq, h->v, ldkv, 0.0f, ds, T);
    matmul_strided(1, 0, T, hs, T, 1.0f, prob, ldp, dout, ldq, 1.0f, dv, ldkv);
    for (int t = 0; t < T; t++) {
        const float *pt = prob + (size_t)t * ldp;
        float *dst = ds + (size_t)t * T;
        double dot = 0.0;
        for (int j = 0; j <= t; j++) dot += (double)pt[j] * dst[j];
        const float fdot = (float)dot;
        for (int j = 0; j <= t; j++) dst[j] = pt[j] * (dst[j] - fdot);
        for (int j = t + 1; j < T; j++) dst[j] = 0.0f; /* masked: P is 0 there */
        if (cap > 0.0f)
            for (int j = 0; j <= t; j++) {
                if (pt[j] == 0.0f) continue; /* outside the window (or underflowed): dS is 0 */
                const float *qt = h->q + (size_t)t * ldq, *kj = h->k + (size_t)j * ldkv;
                float dot_qk = 0.0f;
                for (int d = 0; d < hs; d++) dot_qk += qt[d] * kj[d];
                const float th = tanhf(scale * dot_qk / cap);
                dst[j] *= 1.0f - th * th;
            }
    }
    matmul_strided(0, 0, T, hs, T, scale, ds, T, h->k, ldkv, 0.0f, dq, ldq);
    matmul_strided(1, 0, T, hs, T, scale, ds, T, h->q, ldq, 1.0f, dk, ldkv);
}

/* Attention backward of layer l over the batch: dq (N, QD) overwritten, dk and dv (N, KV)
 * overwritten. Parallel over (sequence, kv head) pairs: each pair owns the dk/dv rows of its
 * kv head and the dq of its query heads, so there are no races and no reductions. */
static void attention_backward(const Model *m, Activations *a, const TokenBatch *b, int l,
                               float *dq, float *dk, float *dv, const float *datt) {
    const ModelConfig *c = &m->config;
    const int NH = c->n_heads, NKV = c->n_kv_heads, hs = model_head_dim(m);
    const int C = NH * hs; /* the query width QD */
    const int KV = NKV * hs, group = NH / NKV;
    float scale, softcap;
    int window;
    model_attention_params(m, l, &scale, &softcap, &window);
    const size_t N = (size_t)a->n_tokens;
    const float *q = a->q + (size_t)l * N * C, *k = a->k + (size_t)l * N * KV;
    const float *v = a->v + (size_t)l * N * KV;
    memset(dk, 0, N * KV * sizeof(float));
    memset(dv, 0, N * KV * sizeof(float));
    const size_t query_rows = N < (size_t)a->max_keys ? N : (size_t)a->max_keys;
    const int pairs = b->n_seqs * NKV;
    /* about twice the forward's work (threads_for_work: small batches stay on one thread) */
    const int parallel = pairs > 1 && threads_for_work(8.0 * (double)N * a->max_keys * C) > 1;
#pragma omp parallel for schedule(dynamic) num_threads(a->n_threads) if (parallel)
    for (int p = 0; p < pairs; p++) {
        const int s = p / NKV, kvh = p % NKV;
        const int off = b->offsets[s], T = b->offsets[s + 1] - off;
        float *ds = a->scratch + (size_t)omp_get_thread_num() * query_rows * a->max_keys;
        const size_t kv_at = (size_t)off * KV + (size_t)kvh * hs;
        for (int h = kvh * group; h < (kvh + 1) * group; h++) {
            const size_t q_at = (size_t)off * C + (size_t)h * hs;
            AttentionHead head = {
                .q = q + q_at,
                .k = k + kv_at,
                .v = v + kv_at,
                .prob = a->att_prob + (((size_t)l * NH + h) * N + off) * a->max_keys,
                .ldq = C,
                .ldkv = KV,
                .ldp = a->max_keys,
                .T = T,
                .hs = hs,
                .scale = scale,
                .softcap = softcap,
                .window = window,
            };
            attention_head_backward(&head, datt + q_at, dq + q_at, dk + kv_at, dv + kv_at, ds);
        }
    }
}

/* forward: h (N·H) = act(g) * u; silu(g) = g σ(g), or GELU (fastmath.h).
 * backward: dg = dh * u * act'(g) (written over dh), du = dh * act(g);
 *           silu'(g) = σ(g) (1 + g (1 - σ(g))). */
static void gated_backward(float *dh_dgate, float *dup, const float *gate, const float *up,
                           size_t n, Activation act) {
    if (act == ACT_SILU) {
#pragma omp parallel for if (n > PARALLEL_MIN_WORK)
        for (size_t i = 0; i < n; i++) {
            const float g = gate[i], sig = sigmoid_fast(g), dh = dh_dgate[i];
            dup[i] = dh * g * sig;
            dh_dgate[i] = dh * up[i] * sig * (1.0f + g * (1.0f - sig));
        }
        return;
    }
    const int tanh_form = act == ACT_GELU_TANH;
#pragma omp parallel for if (n > PARALLEL_MIN_WORK)
    for (size_t i = 0; i < n; i++) {
        const float g = gate[i], dh = dh_dgate[i];
        dup[i] = dh * (tanh_form ? gelu_tanh(g) : gelu_erf(g));
        dh_dgate[i] = dh * up[i] * (tanh_form ? gelu_tanh_grad(g) : gelu_erf_grad(g));
    }
}

/* forward: y (N, width) += b. backward: db (width) += column sums of dy, in row order. */
static void bias_backward(float *db, const float *dy, int n, int width) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < width; j++) db[j] += dy[(size_t)i * width + j];
}

/* forward: x (N, C) = emb[tokens] * scale (scale 1 unless the config scales the embedding).
 * backward: demb[tokens[i]] += scale dx_i, in position order (repeated tokens add up; a serial
 * loop keeps the order fixed, and it is O(N C)). */
static void embedding_backward(float *demb, const float *dx, const int *tokens, int n, int C,
                               float scale) {
    for (int i = 0; i < n; i++) {
        float *row = demb + (size_t)tokens[i] * C;
        const float *di = dx + (size_t)i * C;
        for (int j = 0; j < C; j++) row[j] += scale * di[j];
    }
}

/* ---------------------------------------------------------------------------------------- */
/* the backward pass */

/* The slice of the gradient buffer that mirrors model_param(m, id, layer). */
static float *grad_of(const Model *m, float *grads, ParamId id, int layer) {
    if (!grads) return NULL;
    return grads + (model_param(m, id, layer) - m->params);
}

/* Where a backward pass accumulates: the base gradients (NULL: the base is frozen) and the
 * adapters' (lora and lora_grads NULL: no adapters, or none trained). */
typedef struct {
    float *grads;
    const LoraAdapters *lora;
    float *lora_grads;
} GradTargets;

/* With sandwich norms a block's output is proj -> rmsnorm(proj) before the residual add:
 * returns the gradient of proj (in a->d_xn, overwritten) from dres = dL/d output; without
 * them the output is proj itself and dres is returned. */
static const float *post_norm_backward(const Model *m, Activations *a, const GradTargets *g,
                                       ParamId norm, int l, const float *proj,
                                       const float *inv_rms) {
    const ModelConfig *c = &m->config;
    if (!m->arch.sandwich_norms) return a->d_res;
    const int C = c->dim, n = a->n_tokens;
    memset(a->d_xn, 0, (size_t)n * C * sizeof(float));
    rmsnorm_backward(a->d_xn, grad_of(m, g->grads, norm, l), a->d_res, proj, inv_rms,
                     model_param(m, norm, l), n, C, m->arch.norm_plus_one ? 1.0f : 0.0f);
    return a->d_xn;
}

/* The FFN block of layer l, x_next = x_mid + post(W2 h_act), h_act = act(W1 xn) * (W3 xn),
 * with a->d_res = dL/d x_next on entry and dL/d x_mid on return (the residual path keeps it). */
static void ffn_block_backward(const Model *m, Activations *a, int l, const GradTargets *g) {
    const ModelConfig *c = &m->config;
    const int C = c->dim, H = c->hidden_dim, n = a->n_tokens;
    const size_t N = (size_t)n, li = (size_t)l;
    const float *x_mid = a->x_mid + li * N * C, *xn_ffn = a->xn_ffn + li * N * C;
    const float *h_gate = a->h_gate + li * N * H, *h_up = a->h_up + li * N * H;
    const float *h_act = a->h_act + li * N * H;
    float *dres = a->d_res, *dxn = a->d_xn, *dh = a->d_h, *dup = a->d_h2;
    float *grads = g->grads, *lora_grads = g->lora_grads;
    const LoraAdapters *lora = g->lora;
    const float *dy = post_norm_backward(m, a, g, PARAM_RMS_POST_FFN, l,
                                         m->arch.sandwich_norms ? a->ffn_proj + li * N * C : NULL,
                                         m->arch.sandwich_norms ? a->rms_post_ffn + li * N : NULL);
    /* dh (N, H) = dy · W2; dW2 += dy^T h_act */
    model_project_back(m, PARAM_W2, l, dh, dy, n, 1);
    if (grads) matmul_backward_weight(grad_of(m, grads, PARAM_W2, l), dy, h_act, n, H, C);
    if (lora) lora_backward(lora, a, l, LORA_DOWN, dh, dy, h_act, n, lora_grads);
    gated_backward(dh, dup, h_gate, h_up, N * H, m->arch.act);
    /* dxn (N, C) = dgate · W1 + dup · W3; dW1 += dgate^T xn; dW3 += dup^T xn */
    model_project_back(m, PARAM_W1, l, dxn, dh, n, 1);
    model_project_back(m, PARAM_W3, l, dxn, dup, n, 0);
    if (grads) {
        matmul_backward_weight(grad_of(m, grads, PARAM_W1, l), dh, xn_ffn, n, C, H);
        matmul_backward_weight(grad_of(m, grads, PARAM_W3, l), dup, xn_ffn, n, C, H);
    }
    if (lora) {
        lora_backward(lora, a, l, LORA_GATE, dxn, dh, xn_ffn, n, lora_grads);
        lora_backward(lora, a, l, LORA_UP, dxn, dup, xn_ffn, n, lora_grads);
    }
    /* dres += RMSNorm backward: now dL/d x_mid */
    rmsnorm_backward(dres, grad_of(m, grads, PARAM_RMS_FFN, l), dxn, x_mid, a->rms_ffn + li * N,
                     model_param(m, PARAM_RMS_FFN, l), n, C, m->arch.norm_plus_one ? 1.0f : 0.0f);
}

/* The head norms' backward (qk_norm): dq and dk are the gradients of the normalised q and k;
 * returns those of the raw projections in *dq_raw (a->d_att, free after attention's
 * backward) and *dk_raw (a->d_k_raw); without head norms they are dq and dk. */
static void head_norm_backward(const Model *m, Activations *a, int l, const GradTargets *g,
                               float *dq, float *dk, float **dq_raw, float **dk_raw) {
    const ModelConfig *c = &m->config;
    *dq_raw = dq;
    *dk_raw = dk;
    if (!m->arch.qk_norm) return;
    const int NH = c->n_heads, NKV = c->n_kv_heads, hs = model_head_dim(m), n = a->n_tokens;
    const size_t N = (size_t)n, li = (size_t)l, QD = (size_t)NH * hs, KV = (size_t)NKV * hs;
    const float one = m->arch.norm_plus_one ? 1.0f : 0.0f;
    memset(a->d_att, 0, N * QD * sizeof(float));
    memset(a->d_k_raw, 0, N * KV * sizeof(float));
    rmsnorm_backward(a->d_att, grad_of(m, g->grads, PARAM_Q_NORM, l), dq, a->q_raw + li * N * QD,
                     a->rms_q + li * N * NH, model_param(m, PARAM_Q_NORM, l), n * NH, hs, one);
    rmsnorm_backward(a->d_k_raw, grad_of(m, g->grads, PARAM_K_NORM, l), dk, a->k_raw + li * N * KV,
                     a->rms_k + li * N * NKV, model_param(m, PARAM_K_NORM, l), n * NKV, hs, one);
    *dq_raw = a->d_att;
    *dk_raw = a->d_k_raw;
}

/* The attention block of layer l, x_mid = x + post(Wo att_out), with a->d_res = dL/d x_mid on
 * entry and dL/d x on return; for layer 0 with a frozen base the input gradient, which only
 * feeds the embedding, is skipped. */
static void attention_block_backward(const Model *m, Activations *a, const TokenBatch *b, int l,
                                     const GradTargets *g) {
    const ModelConfig *c = &m->config;
    const int C = c->dim, NH = c->n_heads, NKV = c->n_kv_heads;
    const int QD = model_q_dim(m), KV = model_kv_dim(m), n = a->n_tokens;
    const size_t N = (size_t)n, li = (size_t)l;
    const float *x = a->x + li * N * C, *xn_att = a->xn_att + li * N * C;
    const float *att_out = a->att_out + li * N * QD;
    float *dres = a->d_res, *dxn = a->d_xn, *datt = a->d_att;
    float *dq = a->d_q, *dk = a->d_k, *dv = a->d_v;
    float *grads = g->grads, *lora_grads = g->lora_grads;
    const LoraAdapters *lora = g->lora;
    const float *dy = post_norm_backward(m, a, g, PARAM_RMS_POST_ATT, l,
                                         m->arch.sandwich_norms ? a->att_proj + li * N * C : NULL,
                                         m->arch.sandwich_norms ? a->rms_post_att + li * N : NULL);
    /* datt (N, QD) = dy · Wo; dWo += dy^T att */
    model_project_back(m, PARAM_WO, l, datt, dy, n, 1);
    if (grads) matmul_backward_weight(grad_of(m, grads, PARAM_WO, l), dy, att_out, n, QD, C);
    if (lora) lora_backward(lora, a, l, LORA_O, datt, dy, att_out, n, lora_grads);
    attention_backward(m, a, b, l, dq, dk, dv, datt);
    /* RoPE's backward: the forward rotated each pair of a head by the position's angle
     * (y_a = x_a cos - x_b sin, y_b = x_a sin + x_b cos); the gradient goes through the
     * transposed rotation, i.e. the rotation by -angle */
    model_rope_rotate(m, dq, a->positions, n, NH, 1);
    model_rope_rotate(m, dk, a->positions, n, NKV, 1);
    head_norm_backward(m, a, l, g, dq, dk, &dq, &dk);
    /* q, k, v = projections of xn (+ b): dW += d^T xn; db += colsum d;
     * dxn = dq · Wq + dk · Wk + dv · Wv */
    if (grads) {
        matmul_backward_weight(grad_of(m, grads, PARAM_WQ, l), dq, xn_att, n, C, QD);
        matmul_backward_weight(grad_of(m, grads, PARAM_WK, l), dk, xn_att, n, C, KV);
        matmul_backward_weight(grad_of(m, grads, PARAM_WV, l), dv, xn_att, n, C, KV);
        if (m->arch.qkv_bias) {
            bias_backward(grad_of(m, grads, PARAM_BQ, l), dq, n, QD);
            bias_backward(grad_of(m, grads, PARAM_BK, l), dk, n, KV);
            bias_backward(grad_of(m, grads, PARAM_BV, l), dv, n, KV);
        }
    }
    const int need_dx = l > 0 || grads;
    if (need_dx) {
        model_project_back(m, PARAM_WQ, l, dxn, dq, n, 1);
        model_project_back(m, PARAM_WK, l, dxn, dk, n, 0);
        model_project_back(m, PARAM_WV, l, dxn, dv, n, 0);
    }
    if (lora) {
        lora_backward(lora, a, l, LORA_Q, need_dx ? dxn : NULL, dq, xn_att, n, lora_grads);
        lora_backward(lora, a, l, LORA_K, need_dx ? dxn : NULL, dk, xn_att, n, lora_grads);
        lora_backward(lora, a, l, LORA_V, need_dx ? dxn : NULL, dv, xn_att, n, lora_grads);
    }
    /* dres += RMSNorm backward: now dL/d x, the input of this layer */
    if (need_dx)
        rmsnorm_backward(dres, grad_of(m, grads, PARAM_RMS_ATT, l), dxn, x, a->rms_att + li * N,
                         model_param(m, PARAM_RMS_ATT, l), n, C,
                         m->arch.norm_plus_one ? 1.0f : 0.0f);
}

int model_backward(const Model *m, Activations *a, const TokenBatch *b, const LossSpec *loss,
                   float *grads, const LoraAdapters *lora, float *lora_grads, LossResult *out,
                   CkError *err) {
    const ModelConfig *c = &m->config;
    const int C = c->dim;
    if (!a->trained || !a->keep_per_layer)
        return ck_fail(err, "backward without a training forward (model_forward_train)");
    if (b->n_seqs <= 0 || b->offsets[b->n_seqs] != a->n_tokens)
        return ck_fail(err, "backward over another batch than the last forward");
    const int n = a->n_tokens;
    if (loss_check(loss, n, c->vocab_size, err) != 0) return -1;
    if (lora && !a->lora_u) return ck_fail(err, "backward with adapters the forward did not use");
    /* a base held as stored is frozen: only adapters (or the loss alone) can be trained */
    if (grads && model_require_f32(m, "full fine-tuning", err) != 0) return -1;
    LossResult res = {0};
    if (!lora) lora_grads = NULL;
    if (!grads && !lora_grads) {
        /* nothing to differentiate: the loss alone */
        classifier_loss_backward(m, a, loss, NULL, NULL, &res);
        if (matmul_status(err) != 0) return -1;
        if (out) *out = res;
        return 0;
    }

    /* classifier + loss, then the final RMSNorm: d_res = dL/d x_out */
    classifier_loss_backward(m, a, loss, a->d_xn, grad_of(m, grads, PARAM_WCLS, 0), &res);
    memset(a->d_res, 0, (size_t)n * C * sizeof(float));
    rmsnorm_backward(a->d_res, grad_of(m, grads, PARAM_RMS_FINAL, 0), a->d_xn, a->x_out,
                     a->rms_final, model_param(m, PARAM_RMS_FINAL, 0), n, C,
                     m->arch.norm_plus_one ? 1.0f : 0.0f);
    /* the layers in reverse, each block's backward the reverse of its forward (model.c) */
    const GradTargets g = {grads, lora, lora_grads};
    for (int l = c->n_layers - 1; l >= 0; l--) {
        ffn_block_backward(m, a, l, &g);
        attention_block_backward(m, a, b, l, &g);
    }
    if (grads)
        embedding_backward(grad_of(m, grads, PARAM_TOKEN_EMBEDDING, 0), a->d_res, b->tokens, n, C,
                           m->arch.embed_scale > 0.0f ? m->arch.embed_scale : 1.0f);
    if (matmul_status(err) != 0) return -1;
    if (out) *out = res;
    return 0;
}

int model_forward_backward(const Model *m, Activations *a, const TokenBatch *b,
                           const LossSpec *loss, float *grads, LoraAdapters *lora,
                           float *lora_grads, LossResult *out, CkError *err) {
    if (model_forward_train(m, a, b, lora, err) != 0) return -1;
    return model_backward(m, a, b, loss, grads, lora, lora_grads, out, err);
}
