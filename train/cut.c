/* cut.c — the CUT objective as per-token loss kinds and weights (see cut.h). */
#include "train/cut.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

CutOptions cut_default_options(void) {
    CutOptions o = {1.1, 1.0, 0.0, 0, CUT_MEAN_PER_EXAMPLE, 0, 0, 0, 0};
    return o;
}

int cut_preset_options(const char *preset, CutOptions *o, CkError *err) {
    *o = cut_default_options();
    /* the reference-* presets (train/presets.h) hold the same λ and α as their scripts */
    if (!strcmp(preset, "online") || !strcmp(preset, "reference-online")) return 0;
    if (!strcmp(preset, "offline") || !strcmp(preset, "reference-offline")) {
        o->lambda = 1.2;
        o->alpha = 0.5;
        return 0;
    }
    return ck_fail(err,
                   "--preset expects online, offline, reference-online or reference-offline, "
                   "got '%s'",
                   preset);
}

CutDetectCounts cut_detect(const double *log_pa, const double *log_pm, int n, double lambda,
                           unsigned char *flags) {
    CutDetectCounts c = {0, 0};
    const double log_lambda = log(lambda);
    for (int t = 0; t < n; t++) {
        const double a = log_pa[t], m = log_pm[t];
        int flag;
        if (isnan(a) || isnan(m)) {
            flag = 0;
        } else if (m <= CUT_LOG_FP32_UNDERFLOW) {
            /* pM == 0 in the reference: pA / 0 is +inf (flagged) unless pA is 0 too (NaN) */
            flag = a > CUT_LOG_FP32_UNDERFLOW;
        } else if (a <= CUT_LOG_FP32_UNDERFLOW) {
            flag = 0; /* 0 / pM = 0 */
        } else {
            flag = a - m > log_lambda;
        }
        flags[t] = (unsigned char)flag;
        c.n_tokens++;
        c.n_flagged += flag;
    }
    return c;
}

/* Number of response targets of sequence s. */
static int count_targets(const TokenBatch *b, const int *targets, int s) {
    int n = 0;
    for (int i = b->offsets[s]; i < b->offsets[s + 1]; i++) n += targets[i] >= 0;
    return n;
}

/* Writes the packed positions of sequence s that carry a target into pos; returns how many. */
static int target_positions(const TokenBatch *b, const int *targets, int s, int *pos) {
    int n = 0;
    for (int i = b->offsets[s]; i < b->offsets[s + 1]; i++)
        if (targets[i] >= 0) pos[n++] = i;
    return n;
}

/* Checks that every sequence of b belongs to exactly one example and that the two sequences
 * of each negative are index-aligned (same response target ids). */
static int check_examples(const TokenBatch *b, const int *targets, const CutPair *ex, int n_ex,
                          int *pa, int *pm, CkError *err) {
    unsigned char *owned = calloc((size_t)b->n_seqs + 1, 1);
    if (!owned) return ck_fail(err, "out of memory");
    int rc = 0;
    for (int e = 0; e < n_ex && rc == 0; e++) {
        const int seqs[2] = {ex[e].seq_a, ex[e].seq_m};
        for (int k = 0; k < 2 && rc == 0; k++) {
            if (k == 1 && seqs[k] == -1) break; /* a positive */
            if (seqs[k] < 0 || seqs[k] >= b->n_seqs)
                rc = ck_fail(err, "CUT example %d: sequence %d out of range", e, seqs[k]);
            else if (owned[seqs[k]]++)
                rc = ck_fail(err, "CUT example %d: sequence %d used twice", e, seqs[k]);
        }
        if (rc != 0 || ex[e].seq_m < 0) continue;
        const int na = target_positions(b, targets, ex[e].seq_a, pa);
        const int nm = target_positions(b, targets, ex[e].seq_m, pm);
        if (na != nm) {
            rc = ck_fail(err, "CUT example %d: %d Align-N but %d Misalign response tokens", e, na,
                         nm);
            break;
        }
        for (int t = 0; t < na; t++)
            if (targets[pa[t]] != targets[pm[t]]) {
                rc = ck_fail(err, "CUT example %d: response token %d differs (%d vs %d)", e, t,
                             targets[pa[t]], targets[pm[t]]);
                break;
            }
    }
    for (int s = 0; s < b->n_seqs && rc == 0; s++)
        if (!owned[s]) rc = ck_fail(err, "CUT: sequence %d belongs to no example", s);
    free(owned);
    return rc;
}

/* The factors in front of an example's Align (*wa) and Misalign (*wm) token means. An example
 * without response tokens has an empty mean (NaN in the reference) and contributes nothing. */
static void mean_factors(const CutOptions *opt, const CutStats *st, int any_neg, int neg, int na,
                         int nm, int n_step, double *wa, double *wm) {
    /* an ablation that removes one of a negative's two terms leaves the other whole */
    const int one_term = opt->no_l1 || opt->no_align_n_mle;
    if (opt->mean == CUT_MEAN_POOLED) {
        const double half = any_neg && !opt->paper_sum && !one_term ? 0.5 : 1.0;
        *wa = st->n_a_tokens ? half / st->n_a_tokens : 0.0;
        *wm = st->n_m_tokens ? half / st->n_m_tokens : 0.0;
    } else {
        const double half = neg && !opt->paper_sum && !one_term ? 0.5 : 1.0;
        *wa = na ? half / ((double)na * n_step) : 0.0;
        *wm = nm ? half / ((double)nm * n_step) : 0.0;
    }
}

/* A negative's nm Misalign tokens (rows pm, their Align-N rows pa) by detection on the
 * log-probs: unlikelihood at weight wm α pA^γ where flagged, MLE at wm elsewhere; subtracts
 * their loss terms from *sum_m in token order. la, lm and flags are scratch of nm entries.
 * Returns the number flagged. */
static int assign_misalign(const double *logprobs, const int *pa, const int *pm, int nm, double wm,
                           const CutOptions *opt, double *la, double *lm, unsigned char *flags,
                           LossKind *kinds, float *weights, double *sum_m) {
    for (int t = 0; t < nm; t++) {
        la[t] = logprobs[pa[t]];
        lm[t] = logprobs[pm[t]];
    }
    int n_flagged = cut_detect(la, lm, nm, opt->lambda, flags).n_flagged;
    if (opt->no_detection) { /* -detection: every Misalign token is given unlikelihood */
        memset(flags, 1, (size_t)nm);
        n_flagged = nm;
    }
    for (int t = 0; t < nm; t++) {
        if (flags[t]) {
            /* α pA^γ: pA is a number read off this forward, so the weight is detached */
            const double dyn = opt->gamma > 0.0 ? exp(opt->gamma * la[t]) : 1.0;
            kinds[pm[t]] = LOSS_UNLIKELIHOOD;
            weights[pm[t]] = (float)(wm * opt->alpha * dyn);
            const double q = -expm1(lm[t]); /* 1 - pM, with its digits as pM -> 0 */
            *sum_m -= opt->alpha * dyn * log(fmax(q, (double)CUT_UL_MIN_Q));
        } else {
            kinds[pm[t]] = LOSS_MLE;
            weights[pm[t]] = (float)wm;
            *sum_m -= lm[t];
        }
    }
    return n_flagged;
}

/* cut_assign_loss, and with logprobs NULL the plan of cut_plan_fused: every Misalign token
 * MLE at its unflagged weight, its Align-N row in partner[] and that weight in base[]. */
static int assign(const TokenBatch *b, const int *targets, const double *logprobs,
                  const CutPair *examples, int n_examples, const CutOptions *opt, LossKind *kinds,
                  float *weights, int *partner, double *base, LossSpec *spec, CutStats *stats,
                  CkError *err) {
    if (!(opt->lambda > 0.0))
        return ck_fail(err, "CUT: lambda must be positive (got %g)", opt->lambda);
    if (!(opt->alpha >= 0.0) || !(opt->gamma >= 0.0))
        return ck_fail(err, "CUT: alpha and gamma must be non-negative");
    const int N = b->offsets[b->n_seqs];
    int *pa = malloc(sizeof(int) * (size_t)(N + 1));
    int *pm = malloc(sizeof(int) * (size_t)(N + 1));
    double *la = malloc(sizeof(double) * (size_t)(N + 1));
    double *lm = malloc(sizeof(double) * (size_t)(N + 1));
    unsigned char *flags = malloc((size_t)N + 1);
    int rc = 0;
    if (!pa || !pm || !la || !lm || !flags) {
        rc = ck_fail(err, "out of memory");
        goto done;
    }
    if ((rc = check_examples(b, targets, examples, n_examples, pa, pm, err)) != 0) goto done;

    for (int i = 0; i < N; i++) {
        kinds[i] = LOSS_NONE;
        weights[i] = 0.0f;
        if (partner) partner[i] = -1;
    }
    CutStats st;
    memset(&st, 0, sizeof st);
    int any_neg = 0;
    for (int e = 0; e < n_examples; e++) {
        const int neg = examples[e].seq_m >= 0;
        any_neg |= neg;
        st.n_a_tokens += count_targets(b, targets, examples[e].seq_a);
        if (neg) st.n_m_tokens += count_targets(b, targets, examples[e].seq_m);
    }
    const int n_step = opt->step_examples > 0 ? opt->step_examples : n_examples;
    double sum_a = 0.0, sum_m = 0.0;

    for (int e = 0; e < n_examples; e++) {
        const int neg = examples[e].seq_m >= 0;
        const int na = target_positions(b, targets, examples[e].seq_a, pa);
        const int nm = neg ? target_positions(b, targets, examples[e].seq_m, pm) : 0;
        if (neg)
            st.n_neg++;
        else
            st.n_pos++;
        double wa, wm;
        mean_factors(opt, &st, any_neg, neg, na, nm, n_step, &wa, &wm);
        /* -Align-N MLE keeps the Align-N rows as MLE of weight 0: no gradient, but the
         * backward still reads their log p for detection */
        const double wa_row = neg && opt->no_align_n_mle ? 0.0 : wa;
        for (int t = 0; t < na; t++) {
            kinds[pa[t]] = LOSS_MLE;
            weights[pa[t]] = (float)wa_row;
            if (logprobs) sum_a -= logprobs[pa[t]];
        }
        if (!neg || opt->no_l1) continue; /* -L1: the Misalign rows get no loss term */
        if (!logprobs) {                  /* the plan: decided later, row by row (cut_decide) */
            for (int t = 0; t < nm; t++) {
                kinds[pm[t]] = LOSS_MLE;
                weights[pm[t]] = (float)wm;
                partner[pm[t]] = pa[t];
                base[pm[t]] = wm;
            }
            continue;
        }
        st.n_flagged +=
            assign_misalign(logprobs, pa, pm, nm, wm, opt, la, lm, flags, kinds, weights, &sum_m);
    }
    st.loss_a = st.n_a_tokens ? sum_a / st.n_a_tokens : 0.0;
    st.loss_m = st.n_m_tokens ? sum_m / st.n_m_tokens : 0.0;
    if (stats) *stats = st;
    *spec = (LossSpec){.targets = targets,
                       .kinds = kinds,
                       .weights = weights,
                       .ul_min_q = CUT_UL_MIN_Q,
                       .logprobs = NULL};
done:
    free(pa);
    free(pm);
    free(la);
    free(lm);
    free(flags);
    return rc;
}

int cut_assign_loss(const TokenBatch *b, const int *targets, const double *logprobs,
                    const CutPair *examples, int n_examples, const CutOptions *opt, LossKind *kinds,
                    float *weights, LossSpec *spec, CutStats *stats, CkError *err) {
    return assign(b, targets, logprobs, examples, n_examples, opt, kinds, weights, NULL, NULL, spec,
                  stats, err);
}

/* The decision cut_assign_loss makes for one Misalign token, taken when the backward pass has
 * just read log pM of row i (its Align-N row, packed before it, was read earlier). */
static void cut_decide(void *ctx, int i, const double *logprobs, LossKind *kind, float *weight) {
    const CutFused *f = ctx;
    const int j = f->partner[i];
    if (j < 0) return;
    double la = logprobs[j], lm = logprobs[i];
    unsigned char flag = 1;
    if (!f->flag_all) cut_detect(&la, &lm, 1, f->lambda, &flag);
    if (!flag) return;
    const double dyn = f->gamma > 0.0 ? exp(f->gamma * la) : 1.0;
    *kind = LOSS_UNLIKELIHOOD;
    *weight = (float)(f->base[i] * f->alpha * dyn);
}

int cut_plan_fused(const TokenBatch *b, const int *targets, const CutPair *examples, int n_examples,
                   const CutOptions *opt, LossKind *kinds, float *weights, int *partner,
                   double *base, double *logprobs, CutFused *f, LossSpec *spec, CkError *err) {
    if (assign(b, targets, NULL, examples, n_examples, opt, kinds, weights, partner, base, spec,
               NULL, err) != 0)
        return -1;
    *f = (CutFused){partner, base, opt->lambda, opt->alpha, opt->gamma, opt->no_detection};
    spec->logprobs = logprobs;
    spec->decide = cut_decide;
    spec->decide_ctx = f;
    return 0;
}

double cut_reference_loss(const double *pa, const double *pm, int n, double lambda, double alpha,
                          double gamma, int paper_sum, double *l_a, double *l_m,
                          unsigned char *flags) {
    double sa = 0.0, sm = 0.0;
    for (int t = 0; t < n; t++) sa += log(pa[t]);
    const double loss_a = -sa / n;
    if (l_a) *l_a = loss_a;
    if (!pm) {
        if (l_m) *l_m = 0.0;
        return loss_a;
    }
    for (int t = 0; t < n; t++) {
        const int flag = pa[t] / pm[t] > lambda; /* IEEE: x/0 = inf flags, 0/0 = NaN does not */
        double q = flag ? 1.0 - pm[t] : pm[t];
        if (q == 0.0) q += 1e-5;
        sm += (flag ? alpha * pow(pa[t], gamma) : 1.0) * log(q);
        if (flags) flags[t] = (unsigned char)flag;
    }
    const double loss_m = -sm / n;
    if (l_m) *l_m = loss_m;
    return paper_sum ? loss_a + loss_m : 0.5 * (loss_a + loss_m);
}
