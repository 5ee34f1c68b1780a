/* metrics.c — see metrics.h. */
#include "reports/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reports/stats.h"

/* The llama.cpp-format HellaSwag copy (eval mc's labelled variant; ../shared/data/hellaswag). */
#define HELLASWAG_VARIANT_NOTE                                                                     \
    "\xE2\x80\xA1 HellaSwag from the llama.cpp-format copy (task hellaswag_llamacpp), a lossy "    \
    "copy of the validation set, not the canonical jsonl: not comparable with published numbers."

/* The four benchmarks of the Open LLM Leaderboard v1 that the paper's Avg. averages. */
static const char *const OPEN_LLM_V1[] = {"arc_c_acc_norm", "hellaswag_acc_norm", "mmlu_acc",
                                          "tqa_mc2", NULL};

/* Every column: first the default table's (the paper's, as cutkit's demo fills it; accuracies
 * and rates in percent, detection on its own scale), then those the default table shows only
 * when a run has them (HellaSwag, MMLU) and those only the paper layouts show (layout.c). */
static const MetricColumn COLUMNS[] = {
    {"ARC-C acc_norm", "arc_c_acc_norm", METRIC_JSON, RUN_MC, "results/arc_challenge/acc_norm,none",
     NULL, 100.0, 2, +1, NULL, NULL, NULL},
    {"TQA MC1", "tqa_mc1", METRIC_JSON, RUN_MC, "results/truthfulqa_mc1/acc,none", NULL, 100.0, 2,
     +1, NULL, NULL, NULL},
    {"TQA MC2", "tqa_mc2", METRIC_JSON, RUN_MC, "results/truthfulqa_mc2/acc,none", NULL, 100.0, 2,
     +1, NULL, NULL, NULL},
    {"Win rate \xC2\xB1 SE", "win_rate", METRIC_JSON, RUN_WINRATE, "win_rate", "standard_error",
     1.0, 2, +1, NULL, NULL, NULL},
    {"Error rate", "error_rate", METRIC_JSON, RUN_ERRORS, "error_rate", NULL, 100.0, 2, -1, NULL,
     NULL, NULL},
    {"Misconception", "misconception_rate", METRIC_JSON, RUN_ERRORS, "misconception_rate", NULL,
     100.0, 2, -1, NULL, NULL, NULL},
    {"Detection F1", "detection_f1", METRIC_DETECTION_F1, RUN_DETECTION, NULL, NULL, 1.0, 3, +1,
     NULL, NULL, NULL},
    {"Flagged fraction", "flagged_fraction", METRIC_FLAGGED_TAIL, RUN_N_FILES, NULL, NULL, 1.0, 3,
     0, NULL, NULL, NULL},
    /* shown in the default table only when a run has them */
    {"HellaSwag acc_norm", "hellaswag_acc_norm", METRIC_JSON, RUN_MC,
     "results/hellaswag/acc_norm,none", NULL, 100.0, 2, +1,
     "results/hellaswag_llamacpp/acc_norm,none", HELLASWAG_VARIANT_NOTE, NULL},
    {"MMLU acc", "mmlu_acc", METRIC_JSON, RUN_MC, "results/mmlu/acc,none", NULL, 100.0, 2, +1, NULL,
     NULL, NULL},
    /* the paper layouts' own */
    {"Avg.", "avg_open_llm_v1", METRIC_AVERAGE, RUN_N_FILES, NULL, NULL, 1.0, 2, +1, NULL, NULL,
     OPEN_LLM_V1},
    {"ROUGE-Lsum", "rouge_lsum", METRIC_JSON, RUN_ROUGE, "scores/rougeLsum/fmeasure", NULL, 100.0,
     2, +1, NULL, NULL, NULL},
};

/* The default table's columns are the first N_DEFAULT. */
#define N_DEFAULT 8

/* The default table's order, with the columns it shows only when some run has a value. */
static const struct {
    int index;    /* into COLUMNS */
    int fallback; /* kept in the all-dashes table of runs that have no value at all */
} DEFAULT_ORDER[] = {{0, 1}, {8, 0}, {9, 0}, {1, 1}, {2, 1},
                     {3, 1}, {4, 1}, {5, 1}, {6, 1}, {7, 1}};

_Static_assert(sizeof COLUMNS / sizeof COLUMNS[0] <= METRIC_MAX_COLUMNS,
               "raise METRIC_MAX_COLUMNS");

/* How many final steps the flagged fraction is averaged over: one update is noisy. */
#define FLAGGED_TAIL_STEPS 10

const MetricColumn *metric_columns(int *n) {
    *n = N_DEFAULT;
    return COLUMNS;
}

const MetricColumn *metric_all_columns(int *n) {
    *n = (int)(sizeof COLUMNS / sizeof COLUMNS[0]);
    return COLUMNS;
}

const char *metric_note(void) {
    return "ARC-C, TQA, win rate and error rate in %; detection F1 (token level) at the run's "
           "\xCE\xBB (else the first); flagged fraction: mean of the last 10 training steps. "
           "Best per column in bold (ties all bold); missing values are dashes.";
}

const char *metric_group_note(void) {
    return "(n=k): mean \xC2\xB1 sample standard deviation over the k seeds of one setting (run "
           "directories whose config.json differs only in seed); a single run's \xC2\xB1 is its "
           "standard error.";
}

/* Rounds to what is shown, so that bold marks the values a reader sees as equal. */
static double shown(const MetricColumn *c, double v) {
    if (!isfinite(v)) return NAN;
    char buf[64];
    metric_format(c, v, buf, sizeof buf);
    return strtod(buf, NULL);
}

void metric_format(const MetricColumn *c, double v, char *buf, size_t size) {
    snprintf(buf, size, "%.*f", c->decimals, v);
    if (!strncmp(buf, "-0", 2) && strtod(buf, NULL) == 0) memmove(buf, buf + 1, strlen(buf));
}

/* Token F1 of detection.json at the index whose λ equals config.json's, else index 0. */
static double detection_f1(const RunDir *rd) {
    const cJSON *d = rd->json[RUN_DETECTION];
    const cJSON *lambdas = cJSON_GetObjectItemCaseSensitive(d, "lambdas");
    double lambda = rundir_config_number(rd, "lambda");
    int index = 0;
    if (cJSON_IsArray(lambdas) && isfinite(lambda)) {
        int i = 0;
        const cJSON *l;
        cJSON_ArrayForEach(l, lambdas) {
            if (cJSON_IsNumber(l) && fabs(l->valuedouble - lambda) <= 1e-9 * fabs(lambda)) {
                index = i;
                break;
            }
            i++;
        }
    }
    char path[64];
    snprintf(path, sizeof path, "token/f1/%d", index);
    return rundir_json_number(d, path);
}

const MetricColumn *metric_column_by_slug(const char *slug) {
    for (size_t i = 0; i < sizeof COLUMNS / sizeof COLUMNS[0]; i++)
        if (!strcmp(COLUMNS[i].slug, slug)) return &COLUMNS[i];
    return NULL;
}

/* The mean of the scaled values of the columns in parts, NAN unless every one has a value. */
static double average_of(const char *const *parts, const RunDir *rd) {
    double sum = 0;
    int n = 0;
    for (int i = 0; parts && parts[i]; i++, n++) {
        const MetricColumn *p = metric_column_by_slug(parts[i]);
        double v = p ? metric_scaled_value(p, rd) : NAN;
        if (!isfinite(v)) return NAN;
        sum += v;
    }
    return n ? sum / n : NAN;
}

int metric_is_variant(const MetricColumn *c, const RunDir *rd) {
    if (c->source == METRIC_AVERAGE) {
        int any = 0;
        for (int i = 0; c->parts && c->parts[i]; i++) {
            const MetricColumn *p = metric_column_by_slug(c->parts[i]);
            any |= p && metric_is_variant(p, rd);
        }
        return any && isfinite(average_of(c->parts, rd));
    }
    return c->source == METRIC_JSON && c->alt_path &&
           !isfinite(rundir_json_number(rd->json[c->file], c->path)) &&
           isfinite(rundir_json_number(rd->json[c->file], c->alt_path));
}

/* The alt_note behind a variant cell of column c (an average's from its parts). */
static const char *variant_note_of(const MetricColumn *c) {
    if (c->alt_note) return c->alt_note;
    for (int i = 0; c->parts && c->parts[i]; i++) {
        const MetricColumn *p = metric_column_by_slug(c->parts[i]);
        if (p && p->alt_note) return p->alt_note;
    }
    return NULL;
}

char *metric_variant_note(const MetricTable *t) {
    const char *notes[METRIC_MAX_COLUMNS];
    int n = 0;
    size_t len = 1;
    for (int c = 0; c < t->n_cols; c++) {
        int any = 0;
        for (int r = 0; r < t->n_runs && !any; r++) any = metric_cell(t, r, c)->variant;
        const char *note = any ? variant_note_of(&t->cols[c]) : NULL;
        int seen = 0;
        for (int k = 0; k < n && note; k++) seen |= !strcmp(notes[k], note);
        if (note && !seen && n < METRIC_MAX_COLUMNS) notes[n++] = note, len += strlen(note) + 1;
    }
    if (n == 0) return NULL;
    char *out = malloc(len);
    if (!out) return NULL;
    out[0] = '\0';
    for (int k = 0; k < n; k++) {
        if (k) strcat(out, " ");
        strcat(out, notes[k]);
    }
    return out;
}

static double raw_value(const MetricColumn *c, const RunDir *rd) {
    double v;
    switch (c->source) {
    case METRIC_JSON:
        v = rundir_json_number(rd->json[c->file], c->path);
        if (!isfinite(v) && c->alt_path) v = rundir_json_number(rd->json[c->file], c->alt_path);
        return v;
    case METRIC_AVERAGE:
        return average_of(c->parts, rd);
    case METRIC_DETECTION_F1:
        return detection_f1(rd);
    case METRIC_FLAGGED_TAIL:
        return rundir_tail_mean(rd->steps.flagged_fraction, rd->steps.n, FLAGGED_TAIL_STEPS);
    }
    return NAN;
}

double metric_value(const MetricColumn *c, const RunDir *rd) {
    double v = raw_value(c, rd);
    return isfinite(v) ? shown(c, c->scale * v) : NAN;
}

double metric_scaled_value(const MetricColumn *c, const RunDir *rd) {
    double v = raw_value(c, rd);
    return isfinite(v) ? c->scale * v : NAN;
}

int metric_columns_present(const RunDir *runs, int n_runs, MetricColumn *out) {
    const int n_order = (int)(sizeof DEFAULT_ORDER / sizeof DEFAULT_ORDER[0]);
    int n = 0;
    for (int k = 0; k < n_order; k++) {
        const MetricColumn *c = &COLUMNS[DEFAULT_ORDER[k].index];
        int any = 0;
        for (int r = 0; r < n_runs && !any; r++) any = isfinite(metric_value(c, &runs[r]));
        if (any) out[n++] = *c;
    }
    if (n == 0)
        for (int k = 0; k < n_order; k++)
            if (DEFAULT_ORDER[k].fallback) out[n++] = COLUMNS[DEFAULT_ORDER[k].index];
    return n;
}

/* The cell of a row of runs[members[0..n)]: as metric_value (with its se) for one run, the
 * mean and sd over the runs that have a value for more. */
static MetricCell group_cell(const MetricColumn *col, const RunDir *runs, const int *members, int n,
                             double *scratch) {
    MetricCell cell = {NAN, NAN, NAN, 0, 0, 0, 0};
    for (int m = 0; m < n; m++) cell.variant |= metric_is_variant(col, &runs[members[m]]);
    if (n == 1) {
        const RunDir *rd = &runs[members[0]];
        cell.value = metric_value(col, rd);
        cell.n = isfinite(cell.value);
        if (col->stderr_path && isfinite(cell.value)) {
            double se = rundir_json_number(rd->json[col->file], col->stderr_path);
            if (isfinite(se)) cell.se = shown(col, col->scale * se);
        }
        return cell;
    }
    for (int m = 0; m < n; m++) {
        double v = metric_scaled_value(col, &runs[members[m]]);
        if (isfinite(v)) scratch[cell.n++] = v;
    }
    if (cell.n == 0) return cell;
    double mean, sd;
    stats_mean_sd(scratch, cell.n, &mean, &sd);
    cell.value = shown(col, mean);
    if (cell.n > 1) cell.sd = shown(col, sd);
    return cell;
}

/* Marks the best cells of column c (ties all best; none when the column has no direction). */
static void mark_best(MetricTable *t, int c) {
    const MetricColumn *col = &t->cols[c];
    double best = NAN;
    for (int r = 0; r < t->n_runs; r++) {
        const MetricCell *cell = metric_cell(t, r, c);
        if (isfinite(cell->value) && col->better != 0 &&
            (!isfinite(best) || cell->value * col->better > best * col->better))
            best = cell->value;
    }
    for (int r = 0; r < t->n_runs; r++) {
        MetricCell *cell = &t->cells[(size_t)r * t->n_cols + c];
        cell->best = isfinite(best) && cell->value == best;
    }
}

int metric_table_build_groups(MetricTable *t, const RunDir *runs, const RunGroups *groups,
                              const MetricColumn *cols, int n_cols, CkError *err) {
    memset(t, 0, sizeof *t);
    const int n_rows = groups->n;
    int largest = 1;
    for (int r = 0; r < n_rows; r++)
        if (groups->groups[r].n > largest) largest = groups->groups[r].n;
    t->cells = calloc((size_t)n_rows * (size_t)n_cols + 1, sizeof(MetricCell));
    t->labels = calloc((size_t)n_rows + 1, sizeof(char *));
    t->sizes = calloc((size_t)n_rows + 1, sizeof(int));
    double *scratch = malloc(sizeof(double) * (size_t)largest);
    if (!t->cells || !t->labels || !t->sizes || !scratch) {
        free(scratch);
        metric_table_free(t);
        return ck_fail(err, "out of memory");
    }
    t->n_runs = n_rows;
    t->n_cols = n_cols;
    t->cols = cols;
    for (int r = 0; r < n_rows; r++) {
        const RunGroup *g = &groups->groups[r];
        t->labels[r] = g->label;
        t->sizes[r] = g->n;
        t->grouped |= g->n > 1;
        for (int c = 0; c < n_cols; c++)
            t->cells[(size_t)r * n_cols + c] =
                group_cell(&cols[c], runs, g->members, g->n, scratch);
    }
    for (int c = 0; c < n_cols; c++) mark_best(t, c);
    free(scratch);
    return 0;
}

int metric_table_build(MetricTable *t, const RunDir *runs, int n_runs, const MetricColumn *cols,
                       int n_cols, CkError *err) {
    RunGroup *rows = calloc((size_t)n_runs + 1, sizeof *rows);
    int *index = malloc(sizeof(int) * (size_t)(n_runs + 1));
    if (!rows || !index) {
        free(rows);
        free(index);
        memset(t, 0, sizeof *t);
        return ck_fail(err, "out of memory");
    }
    for (int r = 0; r < n_runs; r++) {
        index[r] = r;
        rows[r] = (RunGroup){runs[r].label, 1, &index[r]}; /* borrowed: not freed here */
    }
    RunGroups groups = {n_runs, rows};
    int rc = metric_table_build_groups(t, runs, &groups, cols, n_cols, err);
    free(rows);
    free(index);
    return rc;
}

void metric_table_free(MetricTable *t) {
    free(t->cells);
    free(t->labels);
    free(t->sizes);
    free(t->marker_note);
    memset(t, 0, sizeof *t);
}

const MetricCell *metric_cell(const MetricTable *t, int r, int c) {
    return &t->cells[(size_t)r * t->n_cols + c];
}
