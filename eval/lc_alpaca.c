/* lc_alpaca.c — AlpacaEval's length-controlled win rate (see lc_alpaca.h): the design
 * matrices, sklearn's group folds and cross-validated penalty, the refit and the prediction
 * over every annotation. */
#include "eval/lc_alpaca.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/strbuf.h"
#include "util/termsafe.h"

#define LC_N_SPLITS     5
#define LC_N_CS         10
#define LC_GAMED_WEIGHT (0.2 / 2) /* regularize_to_baseline_lambda over the two gamed models */

/* numpy's argsort (introsort, kind "quicksort") of n equal keys leaves them in this order:
 * its partition steps swap equal keys pairwise from both ends, and partitions of at most 16
 * are left to an insertion sort that moves nothing. */
static void argsort_equal_keys(int n, int *order) {
    for (int i = 0; i < n; i++) order[i] = i;
    int stack[128], sp = 0, lo = 0, hi = n - 1;
    for (;;) {
        while (hi - lo > 15) {
            int mid = lo + ((hi - lo) >> 1), i = lo, j = hi - 1, t;
            t = order[mid], order[mid] = order[j], order[j] = t; /* the pivot aside */
            for (;;) {
                i++, j--;
                if (i >= j) break;
                t = order[i], order[i] = order[j], order[j] = t;
            }
            t = order[i], order[i] = order[hi - 1], order[hi - 1] = t;
            /* the larger side waits on the stack */
            if (i - lo < hi - i) {
                stack[sp++] = i + 1, stack[sp++] = hi;
                hi = i - 1;
            } else {
                stack[sp++] = lo, stack[sp++] = i - 1;
                lo = i + 1;
            }
        }
        if (sp == 0) break;
        hi = stack[--sp];
        lo = stack[--sp];
    }
}

void lc_group_kfold(int n_groups, int n_splits, int *fold) {
    int *order = malloc(sizeof *order * (size_t)(n_groups > 0 ? n_groups : 1));
    if (!order) { /* out of memory: plain round robin, the fold sizes are the same */
        for (int g = 0; g < n_groups; g++) fold[g] = g % n_splits;
        return;
    }
    argsort_equal_keys(n_groups, order);
    /* reversed; every group weighs the same, so the lightest fold goes round robin */
    for (int k = 0; k < n_groups; k++) fold[order[n_groups - 1 - k]] = k % n_splits;
    free(order);
}

double lc_alpaca_c(int k) {
    /* numpy.linspace(-4, 4, 10) sets its last value to the stop exactly */
    return pow(10.0, k == LC_N_CS - 1 ? 4.0 : k * (8.0 / 9.0) + -4.0);
}

static double sigmoid(double z) {
    if (z >= 0) return 1 / (1 + exp(-z));
    double e = exp(z);
    return e / (1 + e);
}

/* ---- the design ------------------------------------------------------------------------- */

/* The training rows and the prediction rows of one fit. */
typedef struct {
    int p;             /* 2 (length, baseline) or 3 (length, difficulty, baseline) */
    int n_train;       /* R */
    double *X, *y, *s; /* R x p, R, R */
    double *Xt;        /* n x p: every annotation at std_delta_len = 0 */
} Design;

static void design_free(Design *d) {
    free(d->X), free(d->y), free(d->s), free(d->Xt);
    memset(d, 0, sizeof *d);
}

/* Appends one training row. */
static void add_row(Design *d, double tanh_len, double difficulty, double not_gamed, double y,
                    double s) {
    double *x = d->X + (size_t)d->n_train * d->p;
    x[0] = tanh_len;
    if (d->p == 3) x[1] = difficulty;
    x[d->p - 1] = not_gamed;
    d->y[d->n_train] = y;
    d->s[d->n_train++] = s;
}

/* pandas' std (ddof 1) of the length differences len_1 - len_2 over every annotation. */
static int length_spread(const LcRows *r, double *sd, CkError *err) {
    double *x = malloc(sizeof *x * (size_t)(r->n > 0 ? r->n : 1));
    if (!x) return ck_fail(err, "out of memory");
    for (int i = 0; i < r->n; i++) x[i] = r->len_1[i] - r->len_2[i];
    double mean = r->n ? winrate_pairwise_sum(x, (size_t)r->n) / r->n : 0;
    for (int i = 0; i < r->n; i++) x[i] = (mean - x[i]) * (mean - x[i]);
    *sd = r->n > 1 ? sqrt(winrate_pairwise_sum(x, (size_t)r->n) / (r->n - 1)) : NAN;
    free(x);
    if (!(*sd > 0) || !isfinite(*sd))
        return ck_fail(err, "std_delta_len is undefined: the %d length differences have no spread",
                       r->n);
    return 0;
}

/* The message for an annotation the difficulty table has no row for. */
static int no_difficulty(const LcDifficulty *t, const LcRows *r, int i, CkError *err) {
    StrBuf b = {0};
    const char *ins = r->instruction && r->instruction[i] ? r->instruction[i] : "";
    size_t n = strlen(ins) > 80 ? 80 : strlen(ins);
    int ok = termsafe_put(&b, ins, n, TERMSAFE_ONE_LINE) == 0;
    if (t->by_instruction)
        ck_fail(err, "%s: no difficulty for the instruction of annotation %d: \"%s%s\"", t->source,
                i + 1, ok && b.p ? b.p : "", strlen(ins) > 80 ? "..." : "");
    else
        ck_fail(err, "%s: no difficulty for index %d (annotation %d: \"%s%s\")", t->source, i,
                i + 1, ok && b.p ? b.p : "", strlen(ins) > 80 ? "..." : "");
    strbuf_free(&b);
    return -1;
}

/* The model's rows: the prediction rows (all n) and the training rows (kept preferences). */
static int model_rows(Design *d, const LcRows *r, const LcDifficulty *t, CkError *err) {
    double sd = NAN;
    if (length_spread(r, &sd, err) != 0) return -1;
    for (int i = 0; i < r->n; i++) {
        double diff = 0;
        if (d->p == 3 &&
            lc_difficulty_lookup(t, i, r->instruction ? r->instruction[i] : NULL, &diff) != 0)
            return no_difficulty(t, r, i, err);
        double *xt = d->Xt + (size_t)i * d->p;
        xt[0] = 0; /* tanh(0): the prediction at equal lengths */
        if (d->p == 3) xt[1] = diff;
        xt[d->p - 1] = 1;
        double pr = r->preference[i] == 0 ? 1.5 : r->preference[i]; /* AlpacaEval's draw */
        if (pr >= 1 && pr <= 2)
            add_row(d, tanh((r->len_1[i] - r->len_2[i]) / sd), diff, 1, pr - 1, 1);
    }
    return 0;
}

/* Builds the design of glm: the gamed rows first (V1), then the model's. */
static int design_build(Design *d, const LcRows *r, const LcOptions *o, const LcDifficulty *t,
                        CkError *err) {
    memset(d, 0, sizeof *d);
    d->p = o->glm == LC_GLM_ALPACA_MINIMAL ? 2 : 3;
    int n_gamed = o->glm == LC_GLM_ALPACA_V1 ? o->gamed->n : 0;
    size_t rows = (size_t)(n_gamed + r->n + 1);
    d->X = malloc(sizeof *d->X * rows * (size_t)d->p);
    d->y = malloc(sizeof *d->y * rows);
    d->s = malloc(sizeof *d->s * rows);
    d->Xt = malloc(sizeof *d->Xt * (size_t)(r->n + 1) * (size_t)d->p);
    if (!d->X || !d->y || !d->s || !d->Xt) return ck_fail(err, "out of memory");
    for (int i = 0; i < n_gamed; i++) {
        const LcGamed *g = o->gamed;
        if (isnan(g->preference[i])) continue; /* dropped from the fit, as the model's */
        add_row(d, tanh(g->std_delta_len[i]), g->difficulty[i], g->not_gamed[i] ? 1 : 0,
                g->preference[i], g->not_gamed[i] ? 1 : LC_GAMED_WEIGHT);
    }
    if (model_rows(d, r, t, err) != 0) return -1;
    if (d->n_train < LC_N_SPLITS)
        return ck_fail(err,
                       "AlpacaEval's length-controlled win rate needs at least %d judged "
                       "pairs to cross-validate, got %d",
                       LC_N_SPLITS, d->n_train);
    return 0;
}

/* ---- the cross-validated fit ------------------------------------------------------------ */

/* Minus the mean weighted log-loss of rows [fold == f] under weights b (sklearn's scorer of
 * AlpacaEval's logloss_continuous: predictions clipped to [1e-15, 1 - 1e-15]). */
static double fold_score(const Design *d, const int *fold, int f, const double *b) {
    double sum = 0;
    int n = 0;
    for (int i = 0; i < d->n_train; i++) {
        if (fold[i] != f) continue;
        double z = 0;
        for (int j = 0; j < d->p; j++) z += d->X[(size_t)i * d->p + j] * b[j];
        double q = fmin(fmax(sigmoid(z), 1e-15), 1 - 1e-15);
        sum += d->s[i] * (d->y[i] * log(q) + (1 - d->y[i]) * log(1 - q));
        n++;
    }
    return n ? sum / n : 0;
}

/* Fits the rows outside fold f (every row when f < 0) with penalty 1/C into b. */
static int fit_without(const Design *d, const int *fold, int f, double C, Design *tmp, double *b,
                       CkError *err) {
    tmp->n_train = 0;
    for (int i = 0; i < d->n_train; i++)
        if (f < 0 || fold[i] != f) {
            memcpy(tmp->X + (size_t)tmp->n_train * d->p, d->X + (size_t)i * d->p,
                   sizeof *d->X * (size_t)d->p);
            tmp->y[tmp->n_train] = d->y[i];
            tmp->s[tmp->n_train++] = d->s[i];
        }
    for (int j = 0; j < d->p; j++) b[j] = 0;
    /* liblinear's objective |b|_1 + C sum s_i loss_i, divided by C */
    return lc_weighted_fit(tmp->X, tmp->y, tmp->s, tmp->n_train, d->p, 1 / C, b, err);
}

/* sklearn's LogisticRegressionCV: the C of the best summed fold score (the first on a tie),
 * then the refit on every row into b. */
static int cv_fit(const Design *d, double *b, double *c_best, CkError *err) {
    int *fold = malloc(sizeof *fold * (size_t)d->n_train);
    Design tmp = {.p = d->p};
    tmp.X = malloc(sizeof *tmp.X * (size_t)d->n_train * (size_t)d->p);
    tmp.y = malloc(sizeof *tmp.y * (size_t)d->n_train);
    tmp.s = malloc(sizeof *tmp.s * (size_t)d->n_train);
    int rc = fold && tmp.X && tmp.y && tmp.s ? 0 : ck_fail(err, "out of memory");
    double total[LC_N_CS] = {0};
    if (rc == 0) lc_group_kfold(d->n_train, LC_N_SPLITS, fold);
    for (int f = 0; f < LC_N_SPLITS && rc == 0; f++)
        for (int k = 0; k < LC_N_CS && rc == 0; k++) {
            rc = fit_without(d, fold, f, lc_alpaca_c(k), &tmp, b, err);
            if (rc == 0) total[k] += fold_score(d, fold, f, b);
        }
    int best = 0;
    for (int k = 1; k < LC_N_CS; k++)
        if (total[k] > total[best]) best = k;
    *c_best = lc_alpaca_c(best);
    if (rc == 0) rc = fit_without(d, fold, -1, *c_best, &tmp, b, err);
    free(fold);
    design_free(&tmp);
    return rc;
}

/* ---- the win rate -------------------------------------------------------------------------- */

/* LC = 100 mean(q), SE = 100 sd(q; ddof 1) / sqrt(n), q the predictions of every row. */
static int predict(const Design *d, int n, const double *b, WinRate *w, CkError *err) {
    double *q = malloc(sizeof *q * (size_t)(n > 0 ? n : 1));
    if (!q) return ck_fail(err, "out of memory");
    for (int i = 0; i < n; i++) {
        double z = 0;
        for (int j = 0; j < d->p; j++) z += d->Xt[(size_t)i * d->p + j] * b[j];
        q[i] = sigmoid(z);
    }
    double mean = winrate_pairwise_sum(q, (size_t)n) / n;
    for (int i = 0; i < n; i++) q[i] = (mean - q[i]) * (mean - q[i]);
    w->lc_win_rate = 100 * mean;
    w->lc_standard_error =
        n > 1 ? 100 * sqrt(winrate_pairwise_sum(q, (size_t)n) / (n - 1)) / sqrt((double)n) : NAN;
    free(q);
    return 0;
}

/* Checks that o names one of AlpacaEval's GLMs with the tables it needs. */
static int check_options(const LcOptions *o, CkError *err) {
    if (o->glm != LC_GLM_ALPACA_MINIMAL && o->glm != LC_GLM_ALPACA_NOREG &&
        o->glm != LC_GLM_ALPACA_V1)
        return ck_fail(err, "%s is not one of AlpacaEval's GLMs", lc_glm_name(o->glm));
    if (o->glm == LC_GLM_ALPACA_V1 && !o->gamed)
        return ck_fail(err, "length_controlled_v1 needs AlpacaEval's gamed rows (df_gamed.csv)");
    if (o->glm == LC_GLM_ALPACA_NOREG && !o->difficulty)
        return ck_fail(err, "length_controlled_noreg needs AlpacaEval's instruction difficulties "
                            "(instruction_difficulty.csv)");
    return 0;
}

int lc_alpaca_winrate(const LcRows *rows, const LcOptions *o, WinRate *w, CkError *err) {
    w->lc_glm = o->glm;
    w->lc_win_rate = w->lc_standard_error = w->lc_c = NAN;
    w->lc_coef_length = w->lc_coef_difficulty = w->lc_coef_baseline = NAN;
    if (check_options(o, err) != 0) return -1;
    if (rows->is_baseline) { /* AlpacaEval: 0.5 by construction, no fit */
        w->lc_win_rate = 50;
        w->lc_standard_error = 0;
        w->lc_coef_length = w->lc_coef_difficulty = w->lc_coef_baseline = 0;
        return 0;
    }
    LcDifficulty from_gamed = {0};
    const LcDifficulty *t = o->difficulty;
    if (!t && o->glm == LC_GLM_ALPACA_V1) {
        if (lc_difficulty_from_gamed(&from_gamed, o->gamed, err) != 0) return -1;
        t = &from_gamed;
    }
    Design d;
    double b[3] = {0, 0, 0};
    int rc = design_build(&d, rows, o, t, err);
    if (rc == 0) rc = cv_fit(&d, b, &w->lc_c, err);
    if (rc == 0) rc = predict(&d, rows->n, b, w, err);
    if (rc == 0) {
        w->lc_coef_length = b[0];
        w->lc_coef_difficulty = d.p == 3 ? b[1] : NAN;
        w->lc_coef_baseline = b[d.p - 1];
    }
    design_free(&d);
    lc_difficulty_free(&from_gamed);
    return rc;
}

/* ---- from annotations -------------------------------------------------------------------- */

int lc_fit_annotations(const AnnotationSet *s, const double *pref, const double *len_1,
                       const double *len_2, int have_lengths, const LcOptions *o, WinRate *w,
                       CkError *err) {
    w->lc_glm = o->glm;
    if (o->glm == LC_GLM_MINIMAL_FIXED)
        return have_lengths && w->n_total >= 2
                   ? winrate_length_controlled(pref, len_1, len_2, NULL, s->n, o, w, err)
                   : 0;
    for (int i = 0; i < s->n; i++)
        if (!s->items[i].output_1 || !s->items[i].output_2)
            return ck_fail(err,
                           "annotation %d has no %s: AlpacaEval's length-controlled win "
                           "rate needs both outputs",
                           i + 1, s->items[i].output_1 ? "output_2" : "output_1");
    const char **ins = malloc(sizeof *ins * (size_t)(s->n + 1));
    if (!ins) return ck_fail(err, "out of memory");
    for (int i = 0; i < s->n; i++) ins[i] = s->items[i].instruction;
    const Annotation *a = s->n ? &s->items[0] : NULL;
    LcRows rows = {
        s->n,
        pref,
        len_1,
        len_2,
        ins,
        a && a->generator_1 && a->generator_2 && strcmp(a->generator_1, a->generator_2) == 0};
    int rc = lc_alpaca_winrate(&rows, o, w, err);
    free(ins);
    return rc;
}
