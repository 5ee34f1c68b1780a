/* optim.c — see optim.h. */
#include "train/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/hf_model.h"
#include "util/hugebuf.h"

/* Parallel loops only pay off past this many floats; below it the thread start costs more. */
#define PAR_MIN 32768

/* Reductions split the buffer into this many equal chunks whatever the thread count, sum each
 * chunk in order and then the chunk sums in order: the result is the same on 1 or 64 threads. */
#define REDUCE_CHUNKS 256

AdamWConfig adamw_config_default(void) {
    AdamWConfig c = {0.9, 0.999, 1e-8, 0.01};
    return c;
}

int adamw_config_validate(const AdamWConfig *c, CkError *err) {
    if (!(c->beta1 >= 0 && c->beta1 < 1))
        return ck_fail(err, "AdamW beta1 must lie in [0, 1), not %g", c->beta1);
    if (!(c->beta2 >= 0 && c->beta2 < 1))
        return ck_fail(err, "AdamW beta2 must lie in [0, 1), not %g", c->beta2);
    if (!(c->eps > 0 && isfinite(c->eps)))
        return ck_fail(err, "AdamW eps must be positive, not %g", c->eps);
    if (!(c->weight_decay >= 0 && isfinite(c->weight_decay)))
        return ck_fail(err, "AdamW weight decay must be >= 0, not %g", c->weight_decay);
    return 0;
}

int adamw_init(AdamW *opt, size_t n, const AdamWConfig *c, CkError *err) {
    memset(opt, 0, sizeof *opt);
    if (adamw_config_validate(c, err) != 0) return -1;
    if (n == 0) return ck_fail(err, "AdamW: the parameter buffer is empty");
    opt->config = *c;
    opt->n = n;
    opt->m = hugebuf_calloc(n, sizeof *opt->m);
    opt->v = hugebuf_calloc(n, sizeof *opt->v);
    opt->segments = malloc(sizeof *opt->segments);
    if (!opt->m || !opt->v || !opt->segments) {
        adamw_free(opt);
        return ck_fail(err, "AdamW: out of memory for the moments of %zu parameters", n);
    }
    opt->n_segments = 1;
    opt->segments[0] = (AdamWSegment){0, n, 1};
    return 0;
}

void adamw_free(AdamW *opt) {
    free(opt->m);
    free(opt->v);
    free(opt->segments);
    memset(opt, 0, sizeof *opt);
}

int adamw_set_decay(AdamW *opt, size_t offset, size_t size, int decay, CkError *err) {
    if (offset > opt->n || size > opt->n - offset)
        return ck_fail(err, "AdamW: range [%zu, %zu + %zu) lies outside the %zu parameters", offset,
                       offset, size, opt->n);
    if (size == 0) return 0;
    decay = decay != 0;
    const size_t a = offset, b = offset + size;
    /* at most two new boundaries, so the table grows by at most two entries */
    AdamWSegment *out = malloc((opt->n_segments + 2) * sizeof *out);
    if (!out) return ck_fail(err, "AdamW: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < opt->n_segments; i++) {
        AdamWSegment s = opt->segments[i];
        AdamWSegment parts[3] = {
            {s.begin, s.end < a ? s.end : a, s.decay},
            {s.begin > a ? s.begin : a, s.end < b ? s.end : b, decay},
            {s.begin > b ? s.begin : b, s.end, s.decay},
        };
        for (int j = 0; j < 3; j++) {
            if (parts[j].begin >= parts[j].end) continue;
            if (k > 0 && out[k - 1].decay == parts[j].decay && out[k - 1].end == parts[j].begin)
                out[k - 1].end = parts[j].end; /* merge, so the table stays minimal */
            else
                out[k++] = parts[j];
        }
    }
    free(opt->segments);
    opt->segments = out;
    opt->n_segments = k;
    return 0;
}

int adamw_exclude_norms(AdamW *opt, const Model *m, int embeddings_too, CkError *err) {
    if (opt->n != m->n_params)
        return ck_fail(err, "AdamW: sized for %zu parameters, the model has %zu", opt->n,
                       m->n_params);
    /* norm gains and biases, as Hugging Face's trainer leaves out every bias and LayerNorm;
     * the families' tensors are empty on a Llama model */
    static const ParamId norms[] = {
        PARAM_RMS_ATT, PARAM_RMS_FFN, PARAM_RMS_FINAL, PARAM_BQ,           PARAM_BK,
        PARAM_BV,      PARAM_Q_NORM,  PARAM_K_NORM,    PARAM_RMS_POST_ATT, PARAM_RMS_POST_FFN};
    for (size_t i = 0; i < sizeof norms / sizeof norms[0]; i++) {
        const ParamTensor *t = &m->tensors[norms[i]];
        if (adamw_set_decay(opt, t->offset, t->size, 0, err) != 0) return -1;
    }
    if (embeddings_too) {
        const ParamTensor *t = &m->tensors[PARAM_TOKEN_EMBEDDING];
        if (adamw_set_decay(opt, t->offset, t->size, 0, err) != 0) return -1;
    }
    return 0;
}

int adamw_decays(const AdamW *opt, size_t i) {
    for (size_t s = 0; s < opt->n_segments; s++)
        if (i >= opt->segments[s].begin && i < opt->segments[s].end) return opt->segments[s].decay;
    return 0;
}

int adamw_step(AdamW *opt, float *params, const float *grads, double lr, CkError *err) {
    if (!(lr >= 0 && isfinite(lr)))
        return ck_fail(err, "AdamW: the learning rate must be finite and >= 0, not %g", lr);
    if (!opt->m || !params || !grads) return ck_fail(err, "AdamW: not initialised");
    /* a step restored from a file may be anything; one past INT64_MAX is undefined */
    if (opt->step < 0 || opt->step == INT64_MAX)
        return ck_fail(err, "AdamW: step counter %lld cannot advance", (long long)opt->step);
    opt->step++;
    const AdamWConfig *c = &opt->config;
    /* The scalars as torch computes them in Python doubles, each rounded to fp32 when it
     * meets the fp32 tensors. */
    const double t = (double)opt->step;
    const double bias1 = 1.0 - pow(c->beta1, t);
    const double bias2 = 1.0 - pow(c->beta2, t);
    const float neg_step = (float)-(lr / bias1);
    const float bias2_sqrt = (float)sqrt(bias2);
    const float b1 = (float)c->beta1, one_b1 = (float)(1.0 - c->beta1);
    const float b2 = (float)c->beta2, one_b2 = (float)(1.0 - c->beta2);
    const float eps = (float)c->eps;
    const float keep_decayed = (float)(1.0 - lr * c->weight_decay);
    float *restrict m = opt->m, *restrict v = opt->v;
    for (size_t s = 0; s < opt->n_segments; s++) {
        const size_t begin = opt->segments[s].begin, end = opt->segments[s].end;
        /* torch multiplies the no-decay group by 1 - lr * 0 = 1, which changes nothing */
        const float keep = opt->segments[s].decay ? keep_decayed : 1.0f;
#pragma omp parallel for schedule(static) if (end - begin > PAR_MIN)
        for (size_t i = begin; i < end; i++) {
            const float g = grads[i];
            const float p = params[i] * keep;
            const float mi = m[i] * b1 + one_b1 * g;
            const float vi = v[i] * b2 + one_b2 * g * g;
            const float denom = sqrtf(vi) / bias2_sqrt + eps;
            m[i] = mi;
            v[i] = vi;
            params[i] = p + neg_step * mi / denom;
        }
    }
    return 0;
}

/* ---- gradients -------------------------------------------------------------------------- */

double optim_grad_norm(const float *x, size_t n) {
    double partial[REDUCE_CHUNKS];
    const size_t chunk = (n + REDUCE_CHUNKS - 1) / REDUCE_CHUNKS;
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int c = 0; c < REDUCE_CHUNKS; c++) {
        size_t begin = (size_t)c * chunk, end = begin + chunk;
        if (begin > n) begin = n;
        if (end > n) end = n;
        double sum = 0;
        for (size_t i = begin; i < end; i++) sum += (double)x[i] * (double)x[i];
        partial[c] = sum;
    }
    double total = 0;
    for (int c = 0; c < REDUCE_CHUNKS; c++) total += partial[c];
    return sqrt(total);
}

void optim_scale(float *x, size_t n, float s) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

double optim_clip_grad_norm(float *grads, size_t n, double max_norm) {
    const double norm = optim_grad_norm(grads, n);
    if (!isfinite(norm)) return norm;
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) optim_scale(grads, n, (float)coef);
    return norm;
}

size_t optim_first_nonfinite(const float *x, size_t n) {
    size_t first[REDUCE_CHUNKS];
    const size_t chunk = (n + REDUCE_CHUNKS - 1) / REDUCE_CHUNKS;
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int c = 0; c < REDUCE_CHUNKS; c++) {
        size_t begin = (size_t)c * chunk, end = begin + chunk;
        if (begin > n) begin = n;
        if (end > n) end = n;
        size_t found = n;
        for (size_t i = begin; i < end; i++)
            if (!isfinite(x[i])) {
                found = i;
                break;
            }
        first[c] = found;
    }
    for (int c = 0; c < REDUCE_CHUNKS; c++)
        if (first[c] < n) return first[c];
    return n;
}

void optim_name_model(const void *ctx, size_t index, char *buf, size_t size) {
    const Model *m = ctx;
    for (int id = 0; id < PARAM_COUNT; id++) {
        const ParamTensor *t = &m->tensors[id];
        if (t->size == 0 || index < t->offset || index - t->offset >= t->size) continue;
        size_t within = index - t->offset;
        int layer = 0;
        if (t->per_layer) {
            const size_t per = t->size / (size_t)m->config.n_layers;
            layer = (int)(within / per);
            within %= per;
        }
        char name[160];
        hf_param_name_arch(&m->arch, (ParamId)id, layer, name, sizeof name);
        snprintf(buf, size, "%s, element %zu", name, within);
        return;
    }
    snprintf(buf, size, "outside the model's %zu parameters", m->n_params);
}

void optim_name_lora(const void *ctx, size_t index, char *buf, size_t size) {
    const LoraAdapters *ad = ctx;
    for (int i = 0; i < ad->n_tensors; i++) {
        const LoraTensor *t = &ad->tensors[i];
        if (index >= t->offset && index - t->offset < t->size) {
            snprintf(buf, size, "%s, element %zu", t->name, index - t->offset);
            return;
        }
    }
    snprintf(buf, size, "outside the adapters' %zu parameters", ad->n_params);
}

void optim_name_table(const void *ctx, size_t index, char *buf, size_t size) {
    const OptimNameTable *tab = ctx;
    for (size_t i = 0; i < tab->count; i++) {
        const OptimTensorName *t = &tab->tensors[i];
        if (index >= t->offset && index - t->offset < t->size) {
            snprintf(buf, size, "%s, element %zu", t->name, index - t->offset);
            return;
        }
    }
    snprintf(buf, size, "in no named tensor");
}

int optim_check_finite(const float *x, size_t n, const char *what, int64_t step, OptimNameFn name,
                       const void *ctx, CkError *err) {
    const size_t i = optim_first_nonfinite(x, n);
    if (i == n) return 0;
    const char *value = isnan(x[i]) ? "nan" : x[i] > 0 ? "inf" : "-inf";
    if (!name)
        return ck_fail(err, "step %lld: %s is %s at index %zu", (long long)step, what, value, i);
    char where[256];
    name(ctx, i, where, sizeof where);
    return ck_fail(err, "step %lld: %s is %s at index %zu (%s)", (long long)step, what, value, i,
                   where);
}
