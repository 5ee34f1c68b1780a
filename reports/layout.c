/* layout.c — see layout.h. */
#include "reports/layout.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reports/labels.h"
#include "util/fileio.h"
#include "util/strbuf.h"

static const char *const NAMES[LAYOUT_COUNT] = {"table2", "table4", "table6", "fig4", "fig7"};

/* A column of a layout: the slug of a metrics.c column and the paper's title for it. */
typedef struct {
    const char *slug, *title;
    int optional; /* shown only when a row has a value */
} LayoutColumn;

static const LayoutColumn TABLE2[] = {
    {"arc_c_acc_norm", "ARC", 0},   {"hellaswag_acc_norm", "HellaSwag", 0},
    {"mmlu_acc", "MMLU", 0},        {"tqa_mc2", "TruthfulQA", 0},
    {"avg_open_llm_v1", "Avg.", 0}, {"win_rate", "AlpacaEval", 0},
};

static const LayoutColumn TABLE4[] = {
    {"tqa_mc2", "Generalist (TruthfulQA)", 0},
    {"rouge_lsum", "Specialist (ROUGE-Lsum)", 0},
    {"win_rate", "Win rate", 1},
    {"error_rate", "Error rate", 1},
    {"misconception_rate", "Misconception", 1},
    {"detection_f1", "Detection F1", 1},
};

static const LayoutColumn TABLE6[] = {
    {"arc_c_acc_norm", "ARC", 0}, {"hellaswag_acc_norm", "HellaSwag", 0}, {"mmlu_acc", "MMLU", 0},
    {"tqa_mc2", "TruthfulQA", 0}, {"win_rate", "AlpacaEval", 0},
};

static const char *const NOTES[3] = {
    "ARC (25-shot acc_norm), HellaSwag (10-shot acc_norm), MMLU (5-shot acc) and TruthfulQA "
    "(0-shot MC2) in %; Avg.: their mean, only where all four exist; AlpacaEval: win rate in % "
    "(\xC2\xB1 its standard error for a single run). Method and Objective from each run's "
    "config.json (Base: no training). Best per column in bold; missing values are dashes.",
    "Generalist: TruthfulQA MC2 in %; Specialist: ROUGE-Lsum F-measure in %; further columns as "
    "the main table. Variant: the change against full CUT, from the ablation switches of each "
    "run's config.json. Best per column in bold; missing values are dashes.",
    "#J: judgments trained on (an align-online iteration: the responses judged in it, from "
    "iter-K/done.json; an offline run: the records of its judgment file). K+: the model after "
    "online iteration K. ARC, HellaSwag, MMLU, TruthfulQA in %, AlpacaEval: win rate in %. Best "
    "per column in bold; missing values are dashes.",
};

int layout_find(const char *name) {
    for (int k = 0; k < LAYOUT_COUNT; k++)
        if (!strcmp(NAMES[k], name)) return k;
    return -1;
}

const char *layout_name(LayoutKind k) {
    return k >= 0 && k < LAYOUT_COUNT ? NAMES[k] : "";
}

int layout_is_table(LayoutKind k) {
    return k == LAYOUT_TABLE2 || k == LAYOUT_TABLE4 || k == LAYOUT_TABLE6;
}

int layout_parse_list(const char *list, int want[LAYOUT_COUNT], CkError *err) {
    memset(want, 0, sizeof(int) * LAYOUT_COUNT);
    const char *p = list;
    while (1) {
        size_t len = strcspn(p, ",");
        char name[32];
        snprintf(name, sizeof name, "%.*s", (int)(len < 31 ? len : 31), p);
        int k = len < 31 ? layout_find(name) : -1;
        if (k < 0)
            return ck_fail(err,
                           "--layout: unknown layout \"%.*s\" (expected a comma-separated list of "
                           "table2, table4, table6, fig4, fig7)",
                           (int)len, p);
        want[k] = 1;
        if (!p[len]) return 0;
        p += len + 1;
    }
}

/* The columns of layout k into lt->cols: every fixed one, and an optional one when some run
 * has a value for it. */
static void choose_columns(LayoutTable *lt, const RunDir *runs, int n_runs) {
    const LayoutColumn *spec = lt->kind == LAYOUT_TABLE2   ? TABLE2
                               : lt->kind == LAYOUT_TABLE4 ? TABLE4
                                                           : TABLE6;
    size_t n = lt->kind == LAYOUT_TABLE2   ? sizeof TABLE2 / sizeof TABLE2[0]
               : lt->kind == LAYOUT_TABLE4 ? sizeof TABLE4 / sizeof TABLE4[0]
                                           : sizeof TABLE6 / sizeof TABLE6[0];
    lt->n_cols = 0;
    for (size_t i = 0; i < n; i++) {
        const MetricColumn *c = metric_column_by_slug(spec[i].slug);
        if (!c) continue;
        int any = !spec[i].optional;
        for (int r = 0; r < n_runs && !any; r++) any = isfinite(metric_value(c, &runs[r]));
        if (!any) continue;
        lt->cols[lt->n_cols] = *c;
        lt->cols[lt->n_cols++].title = spec[i].title;
    }
}

/* The name of a row whose first run is rd, into buf. */
static void row_name(LayoutKind k, const RunDir *rd, char *buf, size_t size) {
    if (k == LAYOUT_TABLE4) {
        label_variant(rd, buf, size);
        return;
    }
    if (k == LAYOUT_TABLE6) {
        double it = rundir_config_number(rd, "iteration");
        ObjectiveLabel l = label_objective(rd);
        if (isfinite(it))
            snprintf(buf, size, "%g+", it);
        else if (!strcmp(l.objective, "cut"))
            snprintf(buf, size, "CUT offline");
        else
            label_method(rd, buf, size);
        return;
    }
    label_method(rd, buf, size);
}

/* Table 6's #J of a group: the value its runs share, "a–b" when they differ, NULL when none
 * has one (a base model). */
static char *judgments_text(const RunDir *runs, const RunGroup *g) {
    double lo = NAN, hi = NAN;
    for (int m = 0; m < g->n; m++) {
        double v = label_judgments(&runs[g->members[m]]);
        if (!isfinite(v)) continue;
        if (!isfinite(lo) || v < lo) lo = v;
        if (!isfinite(hi) || v > hi) hi = v;
    }
    if (!isfinite(lo)) return NULL;
    char buf[80];
    if (lo == hi)
        snprintf(buf, sizeof buf, "%.0f", lo);
    else
        snprintf(buf, sizeof buf, "%.0f\xE2\x80\x93%.0f", lo, hi);
    return strdup(buf);
}

/* Names every row; rows that share a name get their group label after it. */
static int name_rows(LayoutTable *lt, const RunDir *runs, const RunGroups *groups) {
    char buf[640];
    for (int r = 0; r < groups->n; r++) {
        row_name(lt->kind, &runs[groups->groups[r].members[0]], buf, sizeof buf);
        if (!(lt->names[r] = strdup(buf))) return -1;
    }
    int *shared = calloc((size_t)groups->n + 1, sizeof *shared);
    if (!shared) return -1;
    for (int r = 0; r < groups->n; r++)
        for (int q = 0; q < groups->n && !shared[r]; q++)
            shared[r] = q != r && !strcmp(lt->names[q], lt->names[r]) &&
                        strcmp(groups->groups[q].label, groups->groups[r].label) != 0;
    int rc = 0;
    for (int r = 0; rc == 0 && r < groups->n; r++) {
        if (!shared[r]) continue;
        snprintf(buf, sizeof buf, "%s (%s)", lt->names[r], groups->groups[r].label);
        char *named = strdup(buf);
        if (!named) rc = -1;
        free(named ? lt->names[r] : NULL);
        if (named) lt->names[r] = named;
    }
    free(shared);
    return rc;
}

/* The text column (Objective, #J) of every row. */
static int fill_text(LayoutTable *lt, const RunDir *runs, const RunGroups *groups) {
    for (int r = 0; r < groups->n; r++) {
        const RunGroup *g = &groups->groups[r];
        if (lt->kind == LAYOUT_TABLE2) {
            if (!(lt->text[r] = strdup(label_objective(&runs[g->members[0]]).loss))) return -1;
        } else if (lt->kind == LAYOUT_TABLE6) {
            int has = 0;
            for (int m = 0; m < g->n; m++) has |= isfinite(label_judgments(&runs[g->members[m]]));
            if (has && !(lt->text[r] = judgments_text(runs, g))) return -1;
        }
    }
    return 0;
}

int layout_table_build(LayoutTable *lt, LayoutKind k, const RunDir *runs, const RunGroups *groups,
                       CkError *err) {
    memset(lt, 0, sizeof *lt);
    lt->kind = k;
    int n_runs = 0;
    for (int g = 0; g < groups->n; g++) n_runs += groups->groups[g].n;
    choose_columns(lt, runs, n_runs);
    if (metric_table_build_groups(&lt->table, runs, groups, lt->cols, lt->n_cols, err) != 0)
        return -1;
    lt->names = calloc((size_t)groups->n + 1, sizeof *lt->names);
    lt->text = calloc((size_t)groups->n + 1, sizeof *lt->text);
    if (!lt->names || !lt->text || name_rows(lt, runs, groups) != 0 ||
        fill_text(lt, runs, groups) != 0) {
        layout_table_free(lt);
        return ck_fail(err, "out of memory");
    }
    MetricTable *t = &lt->table;
    for (int r = 0; r < groups->n; r++) t->labels[r] = lt->names[r];
    t->row_title = k == LAYOUT_TABLE2 ? "Method" : k == LAYOUT_TABLE4 ? "Variant" : "Model";
    lt->titles[0] = k == LAYOUT_TABLE2 ? "Objective" : "#J";
    t->n_text = k == LAYOUT_TABLE4 ? 0 : 1;
    t->text_titles = lt->titles;
    t->text = (const char *const *)lt->text;
    t->note = NOTES[k == LAYOUT_TABLE2 ? 0 : k == LAYOUT_TABLE4 ? 1 : 2];
    return 0;
}

void layout_table_free(LayoutTable *lt) {
    int n = lt->table.n_runs;
    for (int r = 0; lt->names && r < n; r++) free(lt->names[r]);
    for (int r = 0; lt->text && r < n; r++) free(lt->text[r]);
    free(lt->names);
    free(lt->text);
    metric_table_free(&lt->table);
    memset(lt, 0, sizeof *lt);
}

int layout_table_find(const LayoutTable *lt, const char *key) {
    for (int r = 0; r < lt->table.n_runs; r++)
        if (lt->names && lt->names[r] && !strcmp(lt->names[r], key)) return r;
    return -1;
}

/* ---- align-online run directories (train/online_run.h) -------------------------------- */

/* dir/iter-k/NAME, malloc'd. */
static char *iter_path(const char *dir, int k, const char *name) {
    StrBuf b = {0};
    if (strbuf_printf(&b, "%s/iter-%d%s%s", dir, k, name ? "/" : "", name ? name : "") != 0) {
        strbuf_free(&b);
        return NULL;
    }
    return strbuf_take(&b);
}

/* 1 when dir/config.json says "objective": "cut-online". */
static int is_online_config(const RunDir *parent) {
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(parent->json[RUN_CONFIG], "objective");
    return cJSON_IsString(o) && !strcmp(o->valuestring, "cut-online");
}

int layout_online_iterations(const char *dir) {
    int k = 0;
    for (;; k++) {
        char *p = iter_path(dir, k + 1, "done.json");
        int present = p && access(p, F_OK) == 0;
        free(p);
        if (!present) return k;
    }
}

/* iter-K/done.json's judged responses (positives + negatives), or -1 with err. */
static double judged_in(const char *done_path, CkError *err) {
    char *text = fileio_read_text(done_path, 1 << 20, NULL, err);
    if (!text) return -1;
    cJSON *o = cJSON_Parse(text);
    free(text);
    double pos = rundir_json_number(o, "positives"), neg = rundir_json_number(o, "negatives");
    cJSON_Delete(o);
    if (!isfinite(pos) || !isfinite(neg))
        return ck_fail(err, "%s: expected numbers at \"positives\" and \"negatives\"", done_path);
    return pos + neg;
}

/* Makes rd (iter-k of parent, opened) a row of the online run: the parent's config with its
 * directory replaced, "iteration", "judgments_used" and the label "<label>/iter-k". */
static int adopt_parent(RunDir *rd, const RunDir *parent, int k, double judged, CkError *err) {
    cJSON *c = cJSON_Duplicate(parent->json[RUN_CONFIG], 1);
    char *label = iter_path(parent->label, k, NULL);
    if (!c || !label || run_config_replace_dir(c, parent->path) != 0 ||
        !cJSON_AddNumberToObject(c, "iteration", k) ||
        !cJSON_AddNumberToObject(c, "judgments_used", judged)) {
        cJSON_Delete(c);
        free(label);
        return ck_fail(err, "out of memory");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(c, "label");
    cJSON_AddStringToObject(c, "label", label);
    cJSON_Delete(rd->json[RUN_CONFIG]);
    rd->json[RUN_CONFIG] = c;
    free(rd->label);
    rd->label = label;
    return 0;
}

int layout_open_online(const char *dir, RunDir *runs, int *n, int room, CkError *err) {
    int iterations = layout_online_iterations(dir);
    if (iterations == 0) return 0;
    RunDir parent;
    if (rundir_open(&parent, dir, err) != 0) {
        rundir_close(&parent);
        return -1;
    }
    int added = 0, rc = 0;
    for (int k = 1; rc == 0 && is_online_config(&parent) && k <= iterations; k++) {
        if (*n >= room) {
            rc = ck_fail(err, "%s: more iterations than rows", dir);
            break;
        }
        char *it = iter_path(dir, k, NULL), *done = iter_path(dir, k, "done.json");
        double judged = it && done ? judged_in(done, err) : ck_fail(err, "out of memory");
        RunDir *rd = &runs[*n];
        if (judged < 0 || rundir_open(rd, it, err) != 0 ||
            adopt_parent(rd, &parent, k, judged, err) != 0) {
            rundir_close(rd);
            rc = -1;
        } else {
            (*n)++, added++;
        }
        free(it);
        free(done);
    }
    rundir_close(&parent);
    return rc == 0 ? added : -1;
}
