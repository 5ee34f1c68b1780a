/* metrics.c — see metrics.h. */
#include "reports/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The paper's table: accuracies and rates in percent, detection on its own scale. */
static const MetricColumn COLUMNS[] = {
    {"ARC-C acc_norm", "arc_c_acc_norm", METRIC_JSON, RUN_MC, "results/arc_challenge/acc_norm,none",
     NULL, 100.0, 2, +1},
    {"TQA MC1", "tqa_mc1", METRIC_JSON, RUN_MC, "results/truthfulqa_mc1/acc,none", NULL, 100.0, 2,
     +1},
    {"TQA MC2", "tqa_mc2", METRIC_JSON, RUN_MC, "results/truthfulqa_mc2/acc,none", NULL, 100.0, 2,
     +1},
    {"Win rate \xC2\xB1 SE", "win_rate", METRIC_JSON, RUN_WINRATE, "win_rate", "standard_error",
     1.0, 2, +1},
    {"Error rate", "error_rate", METRIC_JSON, RUN_ERRORS, "error_rate", NULL, 100.0, 2, -1},
    {"Misconception", "misconception_rate", METRIC_JSON, RUN_ERRORS, "misconception_rate", NULL,
     100.0, 2, -1},
    {"Detection F1", "detection_f1", METRIC_DETECTION_F1, RUN_DETECTION, NULL, NULL, 1.0, 3, +1},
    {"Flagged fraction", "flagged_fraction", METRIC_FLAGGED_TAIL, RUN_N_FILES, NULL, NULL, 1.0, 3,
     0},
};

_Static_assert(sizeof COLUMNS / sizeof COLUMNS[0] <= METRIC_MAX_COLUMNS,
               "raise METRIC_MAX_COLUMNS");

/* How many final steps the flagged fraction is averaged over: one update is noisy. */
#define FLAGGED_TAIL_STEPS 10

const MetricColumn *metric_columns(int *n) {
    *n = (int)(sizeof COLUMNS / sizeof COLUMNS[0]);
    return COLUMNS;
}

const char *metric_note(void) {
    return "ARC-C, TQA, win rate and error rate in %; detection F1 (token level) at the run's "
           "\xCE\xBB (else the first); flagged fraction: mean of the last 10 training steps. "
           "Best per column in bold (ties all bold); missing values are dashes.";
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

static double raw_value(const MetricColumn *c, const RunDir *rd) {
    switch (c->source) {
    case METRIC_JSON:
        return rundir_json_number(rd->json[c->file], c->path);
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

int metric_columns_present(const RunDir *runs, int n_runs, MetricColumn *out) {
    int n_all, n = 0;
    const MetricColumn *all = metric_columns(&n_all);
    for (int c = 0; c < n_all; c++) {
        int any = 0;
        for (int r = 0; r < n_runs && !any; r++) any = isfinite(metric_value(&all[c], &runs[r]));
        if (any) out[n++] = all[c];
    }
    if (n == 0)
        for (int c = 0; c < n_all; c++) out[n++] = all[c];
    return n;
}

int metric_table_build(MetricTable *t, const RunDir *runs, int n_runs, const MetricColumn *cols,
                       int n_cols, CkError *err) {
    memset(t, 0, sizeof *t);
    t->cells = calloc((size_t)n_runs * (size_t)n_cols + 1, sizeof(MetricCell));
    t->labels = calloc((size_t)n_runs + 1, sizeof(char *));
    if (!t->cells || !t->labels) {
        metric_table_free(t);
        return ck_fail(err, "out of memory");
    }
    t->n_runs = n_runs;
    t->n_cols = n_cols;
    t->cols = cols;
    for (int r = 0; r < n_runs; r++) t->labels[r] = runs[r].label;
    for (int c = 0; c < n_cols; c++) {
        const MetricColumn *col = &cols[c];
        double best = NAN;
        for (int r = 0; r < n_runs; r++) {
            MetricCell *cell = &t->cells[(size_t)r * n_cols + c];
            cell->value = metric_value(col, &runs[r]);
            cell->se = NAN;
            if (col->stderr_path && isfinite(cell->value)) {
                double se = rundir_json_number(runs[r].json[col->file], col->stderr_path);
                if (isfinite(se)) cell->se = shown(col, col->scale * se);
            }
            if (isfinite(cell->value) && col->better != 0 &&
                (!isfinite(best) || cell->value * col->better > best * col->better))
                best = cell->value;
        }
        for (int r = 0; r < n_runs; r++) {
            MetricCell *cell = &t->cells[(size_t)r * n_cols + c];
            cell->best = isfinite(best) && cell->value == best;
        }
    }
    return 0;
}

void metric_table_free(MetricTable *t) {
    free(t->cells);
    free(t->labels);
    memset(t, 0, sizeof *t);
}

const MetricCell *metric_cell(const MetricTable *t, int r, int c) {
    return &t->cells[(size_t)r * t->n_cols + c];
}
