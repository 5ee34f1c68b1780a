/* mc_mmlu.c — MMLU items and results for `eval mc` (see mc_mmlu.h). */
#include "eval/mc_mmlu.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval/pyjson.h"
#include "eval/results.h"

void mc_mmlu_free(McMmluData *m) {
    if (!m) return;
    mmlu_free(&m->test);
    mmlu_free(&m->dev);
    benchmarks_free(&m->docs);
    memset(m, 0, sizeof *m);
}

int mc_mmlu_load(McMmluData *m, const char *dir, const char *subjects, MmluPrompt prompt,
                 CkError *err) {
    memset(m, 0, sizeof *m);
    struct stat st;
    if (!dir)
        return ck_fail(err, "MMLU data: not shipped with cutkit; give the hendrycks data folder "
                            "(dev/, val/, test/ of CSV files, e.g. ../shared/data/mmlu) with "
                            "--mmlu-data DIR or --data DIR");
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return ck_fail(err, "MMLU data: %s: %s; give the hendrycks data folder (dev/, test/)", dir,
                       stat(dir, &st) != 0 ? strerror(errno) : "not a folder");
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    m->prompt = prompt;
    if (mmlu_load(&m->test, dir, MMLU_TEST, subjects, err) != 0 ||
        mmlu_load(&m->dev, dir, MMLU_DEV, subjects, err) != 0 ||
        mmlu_to_mc_docs(&m->test, prompt, &m->docs, err) != 0) {
        mc_mmlu_free(m);
        return ck_wrap(err, "MMLU data");
    }
    return 0;
}

int mc_mmlu_build_items(const McTask *task, const McMmluData *m, int shots, int limit,
                        McItem **items, int *n_items, CkError *err) {
    *items = NULL;
    *n_items = 0;
    if (shots < 0) return ck_fail(err, "mmlu: negative number of shots");
    int n = 0;
    for (int s = 0; s < MMLU_N_SUBJECTS; s++) {
        int c = m->test.count[s];
        n += limit > 0 && limit < c ? limit : c;
    }
    McItem *it = calloc((size_t)(n > 0 ? n : 1), sizeof(McItem));
    const MmluItem **ex = malloc(sizeof(MmluItem *) * (size_t)(shots > 0 ? shots : 1));
    int rc = it && ex ? 0 : ck_fail(err, "out of memory"), k = 0;
    for (int s = 0; rc == 0 && s < MMLU_N_SUBJECTS; s++) {
        int c = m->test.count[s];
        if (c == 0) continue;
        if (mmlu_exemplars(&m->dev, s, shots, ex, err) != 0) {
            rc = -1;
            break;
        }
        int take = limit > 0 && limit < c ? limit : c;
        for (int j = 0; rc == 0 && j < take; j++, k++) {
            const int d = m->test.first[s] + j;
            StrBuf b = {0};
            if (mmlu_context(m->prompt, &m->test.items[d], ex, shots, &b) != 0) {
                strbuf_free(&b);
                rc = ck_fail(err, "out of memory");
                break;
            }
            it[k] = (McItem){k, s, task, &m->docs.docs[d], strbuf_take(&b), shots};
            if (!it[k].context) rc = ck_fail(err, "out of memory");
        }
    }
    free(ex);
    if (rc) {
        mc_items_free(it, n);
        return -1;
    }
    *items = it;
    *n_items = n;
    return 0;
}

double mc_pooled_stderr(const double *se, const int *sizes, int k) {
    double num = 0.0, total = 0.0;
    for (int i = 0; i < k; i++) {
        if (!isfinite(se[i])) return NAN;
        num += (sizes[i] - 1) * se[i] * se[i] * sizes[i];
        total += sizes[i];
    }
    if (total - k <= 0) return NAN;
    return sqrt(num / (total - k) / total);
}

/* One group's acc over the subjects marked in member[]: macro or weighted mean, pooled SE. */
static void group_acc(const McMetrics *subj, const int *member, int macro, double *acc,
                      double *se) {
    double se_v[MMLU_N_SUBJECTS], sum = 0.0, w = 0.0;
    int sizes[MMLU_N_SUBJECTS], k = 0;
    for (int s = 0; s < MMLU_N_SUBJECTS; s++) {
        if (!member[s] || subj[s].n == 0) continue;
        const double wt = macro ? 1.0 : subj[s].n;
        sum += subj[s].m[0].value * wt;
        w += wt;
        se_v[k] = subj[s].m[0].stderr_;
        sizes[k++] = subj[s].n;
    }
    *acc = w > 0 ? sum / w : NAN;
    *se = mc_pooled_stderr(se_v, sizes, k);
}

/* Each subject's acc over its items (the items of a subject are contiguous). */
static int subject_metrics(const McTask *task, const HarnessVersion *v, const McItem *items,
                           const McItemResult *results, int n, McMetrics *subj) {
    memset(subj, 0, sizeof(McMetrics) * MMLU_N_SUBJECTS);
    for (int i = 0; i < n;) {
        int s = items[i].group, j = i;
        while (j < n && items[j].group == s) j++;
        if (s < 0 || s >= MMLU_N_SUBJECTS) return -1;
        mc_metrics(task, v->mc2, results + i, j - i, &subj[s]);
        i = j;
    }
    return 0;
}

/* The subjects' own entries. */
static int add_subjects(cJSON *root, const McTask *task, const HarnessVersion *v,
                        const McMetrics *subj, int shots, const McMmluData *m) {
    for (int s = 0; s < MMLU_N_SUBJECTS; s++) {
        if (subj[s].n == 0) continue;
        char name[96], alias[96];
        snprintf(name, sizeof name, "mmlu_%s", mmlu_subject_name(s));
        snprintf(alias, sizeof alias, "  - %s", mmlu_subject_name(s));
        if (results_mc_add_entry(root, name, alias, task, v, &subj[s], shots, m->test.count[s],
                                 subj[s].n) != 0)
            return -1;
    }
    return 0;
}

/* The four categories and "mmlu"; *all gets mmlu's acc with both averages in out[2]. */
static int add_groups(cJSON *root, const HarnessVersion *v, const McMetrics *subj, double both[2],
                      McMetric *all) {
    const char *names[MMLU_N_SUBJECTS + 1];
    char bufs[MMLU_N_SUBJECTS][96];
    const char *cats[MMLU_N_CATEGORIES];
    char cat_bufs[MMLU_N_CATEGORIES][64];
    int n_cats = 0, member[MMLU_N_SUBJECTS];
    for (int c = 0; c < MMLU_N_CATEGORIES; c++) {
        int k = 0;
        for (int s = 0; s < MMLU_N_SUBJECTS; s++) {
            member[s] = mmlu_subject_category(s) == (MmluCategory)c && subj[s].n > 0;
            if (!member[s]) continue;
            snprintf(bufs[k], sizeof bufs[k], "mmlu_%s", mmlu_subject_name(s));
            names[k] = bufs[k];
            k++;
        }
        if (k == 0) continue;
        double acc, se;
        group_acc(subj, member, v->mmlu_macro, &acc, &se);
        char alias[64];
        snprintf(cat_bufs[n_cats], sizeof cat_bufs[n_cats], "mmlu_%s", mmlu_category_name(c));
        snprintf(alias, sizeof alias, " - %s", mmlu_category_name(c));
        if (results_mc_add_group(root, cat_bufs[n_cats], alias, names, k, acc, se, 2) != 0)
            return -1;
        cats[n_cats] = cat_bufs[n_cats];
        n_cats++;
    }
    for (int s = 0; s < MMLU_N_SUBJECTS; s++) member[s] = subj[s].n > 0;
    double se_w, se_m;
    group_acc(subj, member, 0, &both[1], &se_w);
    group_acc(subj, member, 1, &both[0], &se_m);
    *all = (McMetric){"acc", v->mmlu_macro ? both[0] : both[1], v->mmlu_macro ? se_m : se_w};
    return results_mc_add_group(root, "mmlu", "mmlu", cats, n_cats, all->value, all->stderr_, 2);
}

int mc_mmlu_record(cJSON *root, const McTask *task, const HarnessVersion *v, const McItem *items,
                   const McItemResult *results, int n, int shots, const McMmluData *m,
                   McMetrics *headline, CkError *err) {
    McMetrics subj[MMLU_N_SUBJECTS];
    if (subject_metrics(task, v, items, results, n, subj) != 0)
        return ck_fail(err, "mmlu: an item without a subject");
    double both[2];
    McMetric all;
    if (add_subjects(root, task, v, subj, shots, m) != 0 ||
        add_groups(root, v, subj, both, &all) != 0)
        return ck_fail(err, "out of memory");
    int n_subjects = 0;
    for (int s = 0; s < MMLU_N_SUBJECTS; s++) n_subjects += subj[s].n > 0;
    cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
    cJSON *avg = cJSON_AddObjectToObject(cfg, "mmlu_average");
    cJSON_AddStringToObject(avg, "mmlu", v->mmlu_macro ? "macro" : "weighted");
    cJSON_AddStringToObject(avg, "meaning",
                            v->mmlu_macro ? "unweighted mean of the subjects' acc (Open LLM "
                                            "Leaderboard v1, harness b281b09)"
                                          : "mean weighted by subject size (harness 0.4 groups, "
                                            "weight_by_size)");
    pyjson_add_float(avg, "acc_macro", both[0]);
    pyjson_add_float(avg, "acc_weighted", both[1]);
    cJSON_AddNumberToObject(avg, "n_subjects", n_subjects);
    cJSON_AddStringToObject(avg, "template", mmlu_prompt_name((MmluPrompt)v->mmlu_prompt));
    memset(headline, 0, sizeof *headline);
    headline->n = n;
    headline->n_metrics = 1;
    headline->m[0] = all;
    return 0;
}
