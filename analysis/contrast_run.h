/* contrast_run.h — the loop of `cutkit contrast` (contrast_pipeline.h is the whole command,
 * from files to folder): every negative record of a judgment set becomes its CUT example, its
 * per-token contrast (contrast.h), rows of contrast.csv (contrast_writer.h) and, when the record's
 * known errors are given (known_errors.h), detection counts (detection.h) at the requested λ values
 * and on a dense λ grid for the precision-recall curve; detection.json holds them in the report's
 * format.
 *
 * Positive records have no Misalign sequence, hence no log pM and nothing to flag: they are
 * skipped (and counted). So are negatives whose response alone fills the model's context (the
 * sequences are cut to the context from the left, as training cuts them, and no prompt would
 * remain). Examples are the other negatives, in file order; the limit counts them. */
#ifndef CK_CONTRAST_RUN_H
#define CK_CONTRAST_RUN_H

#include "util/ck_error.h"
#include "analysis/contrast.h"
#include "analysis/detection.h"
#include "datasets/judgments.h"
#include "analysis/known_errors.h"
#include "model/model.h"
#include "datasets/templates.h"
#include "tokenizer/tokenizer.h"

struct LoraAdapters;

/* What the per-example callback sees; valid during the call only. */
typedef struct {
    int index;                    /* 0-based among the examples processed */
    long example;                 /* the record's index in the file (contrast.csv's example) */
    const JudgmentRecord *record; /* its output is the response */
    const TokenContrast *contrast;
    const unsigned char *flags; /* [contrast->n] flagged at the first requested λ */
} ContrastExampleView;

typedef struct {
    const Model *model;
    const struct LoraAdapters *lora; /* NULL: the bare model */
    const Tokenizer *tok;
    const Template *tpl;
    const JudgmentSet *set;
    const KnownErrorSet *known; /* NULL, or index for index with set: detection is measured on
                                   the negatives that have error_spans */
    const double *lambdas;      /* requested λ values (>= 1 of them; the first one flags
                                   the callback's view) */
    int n_lambdas;
    int limit;            /* examples processed at most; <= 0: every negative */
    const char *csv_path; /* contrast.csv (NULL: not written) */
    const char *comment;  /* its comment line */
    /* Called after each example; a non-zero return stops the run with err set. */
    int (*on_example)(void *ctx, const ContrastExampleView *v, CkError *err);
    /* Called after each example with the counts so far (progress display). */
    void (*on_progress)(void *ctx, int done, int total);
    void *ctx;
} ContrastRunOptions;

typedef struct {
    int n_examples;        /* negatives processed */
    int n_positive;        /* positive records skipped */
    int n_too_long;        /* negatives skipped: the response fills the model's context, so
                              truncation leaves no prompt to predict its first token from */
    int n_inexact;         /* examples whose token ranges are not exact (contrast.h) */
    long n_tokens;         /* response tokens written, EOS included */
    DetectionCounts *all;  /* [n_grid] every example, no errors: the flagged fraction over λ */
    DetectionCounts *grid; /* [n_grid] the examples with error_spans */
    double *grid_lambdas;  /* [n_grid] ascending: the requested λs and a log-spaced grid */
    int n_grid;
    int *requested; /* [n_lambdas] index in the grid of each requested λ */
    int n_lambdas;
    int n_known;    /* examples with error_spans (detection measured on them) */
    int n_decisive; /* of them, with decisive tokens measured */
} ContrastRunResult;

/* Fills grid[0..n) (capacity n_max) with the λ values of the curve: lambdas[0..n_lambdas) and
 * n_log values log-spaced from 1.01 to 1000, sorted ascending, duplicates (1e-12 relative)
 * removed; returns n. */
int contrast_lambda_grid(const double *lambdas, int n_lambdas, int n_log, double *grid, int n_max);

/* Runs o into r (released with contrast_run_result_free, also on failure): contrast.csv is
 * written atomically at o->csv_path when the run succeeds, and removed otherwise. A record
 * that fails (a sequence longer than the context, ...) fails the run naming its index. */
int contrast_run(const ContrastRunOptions *o, ContrastRunResult *r, CkError *err);

/* Releases r's arrays and zeroes it. */
void contrast_run_result_free(ContrastRunResult *r);

/* Writes detection.json at path atomically: "lambdas" (the requested λs), "token":
 * {"precision", "recall", "f1", "chance_precision"}, "mention_recall", "first_mention_recall",
 * "decisive_recall", "flagged_fraction" and "counts" (one array per DetectionCounts field),
 * each an array over the requested λs; "curve" with the same over the dense grid; and
 * "examples", "examples_with_spans", "examples_decisive", "records_too_long", "source" (source:
 * free text, e.g. the judgments path). Fails when r has no example with error_spans. */
int contrast_run_write_detection(const ContrastRunResult *r, const char *path, const char *source,
                                 CkError *err);

#endif
