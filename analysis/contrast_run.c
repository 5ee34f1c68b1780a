/* contrast_run.c — records -> examples -> token contrasts -> contrast.csv rows and detection
 * counts; detection.json. */
#include "analysis/contrast_run.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/contrast_writer.h"
#include "train/cut.h"
#include "util/fileio.h"

/* Points of the log-spaced part of the curve: enough for a smooth PR curve, few enough that
 * the one-pass accumulation stays a small part of a forward. */
#define GRID_LOG_POINTS 40

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int contrast_lambda_grid(const double *lambdas, int n_lambdas, int n_log, double *grid, int n_max) {
    int n = 0;
    for (int i = 0; i < n_lambdas && n < n_max; i++) grid[n++] = lambdas[i];
    for (int i = 0; i < n_log && n < n_max; i++)
        grid[n++] = n_log > 1 ? 1.01 * pow(1000.0 / 1.01, (double)i / (n_log - 1)) : 1.01;
    qsort(grid, (size_t)n, sizeof(double), cmp_double);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (m == 0 || fabs(grid[i] - grid[m - 1]) > 1e-12 * fabs(grid[i])) grid[m++] = grid[i];
    return m;
}

void contrast_run_result_free(ContrastRunResult *r) {
    free(r->all);
    free(r->grid);
    free(r->grid_lambdas);
    free(r->requested);
    memset(r, 0, sizeof *r);
}

/* The grid and the counts of r for o's λ values. */
static int result_init(ContrastRunResult *r, const ContrastRunOptions *o, CkError *err) {
    const int cap = o->n_lambdas + GRID_LOG_POINTS;
    r->grid_lambdas = malloc(sizeof(double) * (size_t)cap);
    r->requested = malloc(sizeof(int) * (size_t)o->n_lambdas);
    if (!r->grid_lambdas || !r->requested) return ck_fail(err, "out of memory");
    r->n_grid =
        contrast_lambda_grid(o->lambdas, o->n_lambdas, GRID_LOG_POINTS, r->grid_lambdas, cap);
    r->n_lambdas = o->n_lambdas;
    for (int i = 0; i < o->n_lambdas; i++) {
        r->requested[i] = 0;
        for (int g = 0; g < r->n_grid; g++)
            if (fabs(r->grid_lambdas[g] - o->lambdas[i]) <= 1e-12 * fabs(o->lambdas[i]))
                r->requested[i] = g;
    }
    r->all = malloc(sizeof(DetectionCounts) * (size_t)r->n_grid);
    r->grid = malloc(sizeof(DetectionCounts) * (size_t)r->n_grid);
    if (!r->all || !r->grid) return ck_fail(err, "out of memory");
    detection_counts_init(r->all, r->grid_lambdas, r->n_grid);
    detection_counts_init(r->grid, r->grid_lambdas, r->n_grid);
    return 0;
}

/* Counts example c (record i) into r: the flagged fraction over every example, detection
 * over those with known errors. */
static int accumulate(ContrastRunResult *r, const ContrastRunOptions *o, int i,
                      const TokenContrast *c, int cutoff, CkError *err) {
    const JudgmentRecord *rec = &o->set->records[i];
    const KnownErrors *k = o->known ? &o->known->records[i] : NULL;
    KnownErrorsExample ke;
    memset(&ke, 0, sizeof ke);
    int rc = 0;
    if (k && k->has_spans) {
        rc = known_errors_example(k, rec, c, o->tok, o->tpl, cutoff, &ke, err);
        if (rc == 0) rc = detection_accumulate(&ke.ex, r->grid, r->n_grid, err);
        if (rc == 0) {
            r->n_known++;
            r->n_decisive += ke.decisive != NULL;
        }
    }
    if (rc == 0) {
        /* the same tokens without errors: flags only */
        double *la = ke.log_pa, *lm = ke.log_pm;
        DetectionSpan *toks = ke.tokens;
        int own = 0;
        if (!la) {
            const int n = c->n ? c->n : 1;
            la = malloc(sizeof(double) * (size_t)n);
            lm = malloc(sizeof(double) * (size_t)n);
            toks = malloc(sizeof(DetectionSpan) * (size_t)n);
            own = 1;
            if (!la || !lm || !toks) rc = ck_fail(err, "out of memory");
            for (int t = 0; rc == 0 && t < c->n; t++) {
                la[t] = c->tokens[t].log_pa;
                lm[t] = c->tokens[t].log_pm;
                toks[t] = (DetectionSpan){c->tokens[t].start, c->tokens[t].end};
            }
        }
        const DetectionExample plain = {c->n, la, lm, toks, 0, NULL, NULL, NULL};
        if (rc == 0) rc = detection_accumulate(&plain, r->all, r->n_grid, err);
        if (own) {
            free(la);
            free(lm);
            free(toks);
        }
    }
    known_errors_example_free(&ke);
    return rc;
}

int contrast_run(const ContrastRunOptions *o, ContrastRunResult *r, CkError *err) {
    memset(r, 0, sizeof *r);
    if (o->n_lambdas < 1) return ck_fail(err, "contrast: no lambda given");
    for (int i = 0; i < o->n_lambdas; i++)
        if (!(o->lambdas[i] > 0) || !isfinite(o->lambdas[i]))
            return ck_fail(err, "contrast: lambda %g must be positive and finite", o->lambdas[i]);
    if (result_init(r, o, err) != 0) {
        contrast_run_result_free(r);
        return -1;
    }
    const int cutoff = o->model->config.seq_len;
    int total = 0;
    for (int i = 0; i < o->set->n; i++) total += o->set->records[i].judgment != NULL;
    r->n_positive = o->set->n - total;
    int left = total; /* negatives not visited yet */
    if (o->limit > 0 && total > o->limit) total = o->limit;
    ContrastWriter w;
    memset(&w, 0, sizeof w);
    int rc = 0;
    if (o->csv_path)
        rc = contrast_writer_open(&w, o->csv_path, o->comment ? o->comment : "cutkit contrast",
                                  o->lambdas, o->n_lambdas, err);
    unsigned char *flags = NULL;
    int cap_flags = 0;
    for (int i = 0; rc == 0 && i < o->set->n && r->n_examples < total; i++) {
        const JudgmentRecord *rec = &o->set->records[i];
        if (!rec->judgment) continue;
        left--;
        CutExample ex;
        TokenContrast c;
        memset(&c, 0, sizeof c);
        rc = judgments_build_example(o->tpl, rec, o->tok, cutoff, &ex, err);
        if (rc == 0 && (ex.a.prompt_len < 1 || ex.m.prompt_len < 1)) {
            /* the response alone fills the context: its first token would be predicted from
             * nothing, and a contrast of two contexts needs the contexts */
            judgments_example_free(&ex);
            r->n_too_long++;
            if (r->n_examples + left < total) total = r->n_examples + left; /* for progress */
            continue;
        }
        if (rc == 0) {
            rc = token_contrast_compute(o->model, o->lora, o->tok, &ex, rec->output, &c, err);
            judgments_example_free(&ex);
        }
        if (rc == 0 && o->csv_path)
            rc = contrast_writer_example(&w, rec->source_index, &c, rec->output, err);
        if (rc == 0) rc = accumulate(r, o, i, &c, cutoff, err);
        if (rc == 0 && c.n > cap_flags) {
            unsigned char *f = realloc(flags, (size_t)c.n);
            if (f) {
                flags = f;
                cap_flags = c.n;
            } else {
                rc = ck_fail(err, "out of memory");
            }
        }
        if (rc == 0 && o->on_example) {
            double *la = malloc(sizeof(double) * (size_t)(c.n ? c.n : 1));
            double *lm = malloc(sizeof(double) * (size_t)(c.n ? c.n : 1));
            if (!la || !lm) rc = ck_fail(err, "out of memory");
            for (int t = 0; rc == 0 && t < c.n; t++) {
                la[t] = c.tokens[t].log_pa;
                lm[t] = c.tokens[t].log_pm;
            }
            if (rc == 0) cut_detect(la, lm, c.n, o->lambdas[0], flags);
            free(la);
            free(lm);
            ContrastExampleView v = {r->n_examples, rec->source_index, rec, &c, flags};
            if (rc == 0) rc = o->on_example(o->ctx, &v, err);
        }
        if (rc == 0) {
            r->n_examples++;
            r->n_tokens += c.n;
            r->n_inexact += !c.spans_exact;
            if (o->on_progress) o->on_progress(o->ctx, r->n_examples, total);
        } else {
            ck_wrap(err, "record %d", rec->source_index);
        }
        token_contrast_free(&c);
    }
    free(flags);
    if (rc == 0 && o->csv_path) rc = contrast_writer_commit(&w, err);
    if (rc != 0) {
        contrast_writer_abort(&w);
        contrast_run_result_free(r);
    }
    return rc;
}

/* Adds an array named key of f(counts[idx[i]]) for i < n to obj. */
static void add_series(cJSON *obj, const char *key, const DetectionCounts *counts, const int *idx,
                       int n, double (*f)(const DetectionCounts *)) {
    cJSON *a = cJSON_AddArrayToObject(obj, key);
    for (int i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(f(&counts[idx ? idx[i] : i])));
}

#define SCORE_GETTER(name)                                                                         \
    static double get_##name(const DetectionCounts *c) {                                           \
        return detection_scores(c).name;                                                           \
    }
SCORE_GETTER(precision)
SCORE_GETTER(recall)
SCORE_GETTER(f1)
SCORE_GETTER(chance_precision)
SCORE_GETTER(mention_recall)
SCORE_GETTER(first_mention_recall)
SCORE_GETTER(decisive_recall)
SCORE_GETTER(flagged_fraction)

#define COUNT_GETTER(field)                                                                        \
    static double get_##field(const DetectionCounts *c) {                                          \
        return (double)c->field;                                                                   \
    }
COUNT_GETTER(lambda)
COUNT_GETTER(n_examples)
COUNT_GETTER(n_tokens)
COUNT_GETTER(n_error_tokens)
COUNT_GETTER(n_flagged)
COUNT_GETTER(n_flagged_errors)
COUNT_GETTER(n_mentions)
COUNT_GETTER(n_mentions_found)
COUNT_GETTER(n_decisive)
COUNT_GETTER(n_decisive_found)
COUNT_GETTER(n_first)
COUNT_GETTER(n_first_found)

/* The scores and counts of counts[idx[0..n)] (idx NULL: all n) into obj. */
static void add_block(cJSON *obj, const DetectionCounts *counts, const int *idx, int n) {
    add_series(obj, "lambdas", counts, idx, n, get_lambda);
    cJSON *tok = cJSON_AddObjectToObject(obj, "token");
    add_series(tok, "precision", counts, idx, n, get_precision);
    add_series(tok, "recall", counts, idx, n, get_recall);
    add_series(tok, "f1", counts, idx, n, get_f1);
    add_series(tok, "chance_precision", counts, idx, n, get_chance_precision);
    add_series(obj, "mention_recall", counts, idx, n, get_mention_recall);
    add_series(obj, "first_mention_recall", counts, idx, n, get_first_mention_recall);
    add_series(obj, "decisive_recall", counts, idx, n, get_decisive_recall);
    add_series(obj, "flagged_fraction", counts, idx, n, get_flagged_fraction);
    cJSON *cnt = cJSON_AddObjectToObject(obj, "counts");
    add_series(cnt, "examples", counts, idx, n, get_n_examples);
    add_series(cnt, "tokens", counts, idx, n, get_n_tokens);
    add_series(cnt, "error_tokens", counts, idx, n, get_n_error_tokens);
    add_series(cnt, "flagged", counts, idx, n, get_n_flagged);
    add_series(cnt, "flagged_errors", counts, idx, n, get_n_flagged_errors);
    add_series(cnt, "mentions", counts, idx, n, get_n_mentions);
    add_series(cnt, "mentions_found", counts, idx, n, get_n_mentions_found);
    add_series(cnt, "decisive", counts, idx, n, get_n_decisive);
    add_series(cnt, "decisive_found", counts, idx, n, get_n_decisive_found);
    add_series(cnt, "first_mentions", counts, idx, n, get_n_first);
    add_series(cnt, "first_mentions_found", counts, idx, n, get_n_first_found);
}

int contrast_run_write_detection(const ContrastRunResult *r, const char *path, const char *source,
                                 CkError *err) {
    if (r->n_known == 0)
        return ck_fail(err, "%s: no example has error_spans: no detection to write", path);
    cJSON *root = cJSON_CreateObject();
    if (!root) return ck_fail(err, "out of memory");
    add_block(root, r->grid, r->requested, r->n_lambdas);
    cJSON *curve = cJSON_AddObjectToObject(root, "curve");
    if (curve) add_block(curve, r->grid, NULL, r->n_grid);
    cJSON_AddNumberToObject(root, "examples", r->n_examples);
    cJSON_AddNumberToObject(root, "examples_with_spans", r->n_known);
    cJSON_AddNumberToObject(root, "examples_decisive", r->n_decisive);
    cJSON_AddNumberToObject(root, "records_too_long", r->n_too_long);
    cJSON_AddStringToObject(root, "source", source ? source : "");
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return ck_fail(err, "out of memory");
    const size_t len = strlen(text);
    char *buf = realloc(text, len + 2);
    if (!buf) {
        free(text);
        return ck_fail(err, "out of memory");
    }
    buf[len] = '\n';
    buf[len + 1] = '\0';
    int rc = fileio_write_atomic(path, buf, len + 1, err);
    free(buf);
    return rc;
}
