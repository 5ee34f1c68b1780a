/* mc_suite.c — the open-llm-v1 suite and its summary file (see mc_suite.h). */
#include "eval/mc_suite.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/pyjson.h"
#include "eval/results.h"
#include "util/fileio.h"

/* One column of the leaderboard: the task asked for, its shots and headline metric. */
typedef struct {
    const char *column;
    McTaskId task;
    int shots;
    const char *metric;
} SuiteColumn;

/* the Open LLM Leaderboard v1's settings (its About page; the CUT paper's Table 2) */
static const SuiteColumn OPEN_LLM_V1[] = {
    {"ARC", MC_ARC_CHALLENGE, 25, "acc_norm"},
    {"HellaSwag", MC_HELLASWAG, 10, "acc_norm"},
    {"MMLU", MC_MMLU, 5, "acc"},
    {"TruthfulQA", MC_TRUTHFULQA_MC2, 0, "acc"},
};
enum { N_COLUMNS = sizeof OPEN_LLM_V1 / sizeof OPEN_LLM_V1[0] };

int mc_suite_apply(McRunOptions *o, const char *name, CkError *err) {
    if (strcmp(name, "open-llm-v1") != 0)
        return ck_fail(err, "--suite: unknown suite '%s' (known: %s)", name, MC_SUITE_CHOICES);
    if (o->n_tasks > 0) return ck_fail(err, "--suite and --task: give one");
    for (int i = 0; i < N_COLUMNS; i++) {
        o->tasks[o->n_tasks++] = mc_task_get(OPEN_LLM_V1[i].task);
        o->task_shots[OPEN_LLM_V1[i].task] = OPEN_LLM_V1[i].shots;
    }
    o->suite = "open-llm-v1";
    if (!o->harness_version) o->harness_version = "b281b09";
    return 0;
}

/* The task scored for column c (HellaSwag may have become its llama.cpp variant). */
static const McTask *scored_task(const McRunReport *r, const SuiteColumn *c) {
    for (int i = 0; i < r->n_tasks; i++) {
        const McTask *t = r->tasks[i].task;
        if (t && (t->id == c->task || (c->task == MC_HELLASWAG && t->id == MC_HELLASWAG_LLAMACPP)))
            return t;
    }
    return NULL;
}

/* Adds column c's entry to cols; *value gets the number (NAN when absent). */
static void add_column(cJSON *cols, const SuiteColumn *c, const McTask *t, const cJSON *results,
                       double *value) {
    const char *task = t ? t->name : mc_task_get(c->task)->name;
    char metric[64], key[160];
    snprintf(metric, sizeof metric, "%s,none", c->metric);
    snprintf(key, sizeof key, "results/%s/%s", task, metric);
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(results, "results");
    const cJSON *v =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(res, task), metric);
    /* metrics are pyjson floats: raw text holding Python's repr */
    *value = cJSON_IsNumber(v)                  ? v->valuedouble
             : cJSON_IsRaw(v) && v->valuestring ? strtod(v->valuestring, NULL)
                                                : NAN;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "column", c->column);
    cJSON_AddStringToObject(o, "task", task);
    cJSON_AddStringToObject(o, "metric", c->metric);
    cJSON_AddStringToObject(o, "key", key);
    cJSON_AddNumberToObject(o, "shots", c->shots);
    pyjson_add_float(o, "value", *value); /* null when absent */
    if (t && t->id == MC_HELLASWAG_LLAMACPP)
        cJSON_AddStringToObject(o, "variant",
                                "llama.cpp copy of the validation split (lossy); "
                                "not the harness's hellaswag");
    cJSON_AddItemToArray(cols, o);
}

int mc_suite_write(const McRunOptions *o, McRunReport *report, const cJSON *results, CkError *err) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return ck_fail(err, "out of memory");
    cJSON_AddStringToObject(root, "suite", o->suite);
    cJSON_AddStringToObject(root, "harness_version", report->harness_version);
    cJSON_AddBoolToObject(root, "bos", report->bos);
    if (o->limit > 0)
        cJSON_AddNumberToObject(root, "limit", o->limit);
    else
        cJSON_AddNullToObject(root, "limit");
    cJSON *cols = cJSON_AddArrayToObject(root, "columns");
    double sum = 0.0;
    int n = 0;
    for (int i = 0; i < N_COLUMNS; i++) {
        double v;
        add_column(cols, &OPEN_LLM_V1[i], scored_task(report, &OPEN_LLM_V1[i]), results, &v);
        if (isfinite(v)) {
            sum += v;
            n++;
        }
    }
    report->suite_average = n == N_COLUMNS ? sum / n : NAN;
    pyjson_add_float(root, "average", report->suite_average); /* null unless all four */
    cJSON_AddStringToObject(root, "average_of", "the unweighted mean of the four columns");
    int rc =
        fileio_path(report->suite_path, sizeof report->suite_path, o->out, "open_llm_v1.json") != 0
            ? ck_fail(err, "%s: path too long", o->out)
            : results_write_json(report->suite_path, root, err);
    cJSON_Delete(root);
    return rc;
}
