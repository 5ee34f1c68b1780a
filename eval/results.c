/* results.c — results.json in the harness's shape and the items.jsonl records (see results.h).
 * Doubles in items.jsonl are printed by cJSON with enough digits to read back exactly, so a
 * resumed run computes its metrics from the same numbers as an uninterrupted one. */
#include "eval/results.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/mmlu.h"
#include "datasets/mmlu_prompt.h"
#include "eval/pyjson.h"
#include "util/fileio.h"
#include "util/strbuf.h"

/* the task-keyed sections of results.json, in the harness's order */
static const char *const SECTIONS[] = {"results", "group_subtasks",   "configs",  "versions",
                                       "n-shot",  "higher_is_better", "n-samples"};
enum { N_SECTIONS = sizeof SECTIONS / sizeof SECTIONS[0] };

void results_add_metric(cJSON *obj, const char *name, double value, double stderr_) {
    char key[96];
    snprintf(key, sizeof key, "%s,none", name);
    pyjson_add_float(obj, key, value);
    snprintf(key, sizeof key, "%s_stderr,none", name);
    if (isfinite(stderr_))
        pyjson_add_float(obj, key, stderr_);
    else
        cJSON_AddStringToObject(obj, key, "N/A");
}

cJSON *results_mc_root(void) {
    cJSON *root = cJSON_CreateObject();
    int bad = !root;
    for (int i = 0; !bad && i < N_SECTIONS; i++) bad = !cJSON_AddObjectToObject(root, SECTIONS[i]);
    bad = bad || !cJSON_AddObjectToObject(root, "config") ||
          !cJSON_AddObjectToObject(root, "diagnostics");
    if (bad) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* {"metric": name, "aggregation": "mean", "higher_is_better": true} */
static cJSON *metric_entry(const char *name) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "metric", name);
    cJSON_AddStringToObject(m, "aggregation", "mean");
    cJSON_AddTrueToObject(m, "higher_is_better");
    return m;
}

/* The harness's dataset fields of the HellaSwag and MMLU task YAMLs (hellaswag.yaml;
 * mmlu/default/_default_template_yaml with mmlu_<subject>.yaml). */
static void dataset_fields(cJSON *c, const McTask *task, const char *name) {
    if (task->kind == MC_KIND_HELLASWAG) {
        cJSON *tag = cJSON_AddArrayToObject(c, "tag");
        cJSON_AddItemToArray(tag, cJSON_CreateString("multiple_choice"));
        cJSON_AddStringToObject(c, "dataset_path", "Rowan/hellaswag");
        cJSON_AddStringToObject(c, "training_split", "train");
        cJSON_AddStringToObject(c, "validation_split", "validation");
        cJSON_AddStringToObject(c, "process_docs", "process_docs");
        cJSON_AddStringToObject(c, "doc_to_text", "{{query}}");
        cJSON_AddStringToObject(c, "doc_to_target", "{{label}}");
        cJSON_AddStringToObject(c, "doc_to_choice", "choices");
        cJSON_AddStringToObject(c, "description", "");
        return;
    }
    /* MMLU: name is "mmlu_<subject>" */
    const char *subject = strncmp(name, "mmlu_", 5) == 0 ? name + 5 : name;
    cJSON *tag = cJSON_AddArrayToObject(c, "tag");
    int s = mmlu_subject_find(subject);
    char buf[160];
    snprintf(buf, sizeof buf, "mmlu_%s_tasks",
             s >= 0 ? mmlu_category_name(mmlu_subject_category(s)) : "");
    cJSON_AddItemToArray(tag, cJSON_CreateString(buf));
    cJSON_AddStringToObject(c, "dataset_path", "cais/mmlu");
    cJSON_AddStringToObject(c, "dataset_name", subject);
    cJSON_AddStringToObject(c, "test_split", "test");
    cJSON_AddStringToObject(c, "fewshot_split", "dev");
    cJSON_AddStringToObject(c, "doc_to_text",
                            "{{question.strip()}}\nA. {{choices[0]}}\nB. "
                            "{{choices[1]}}\nC. {{choices[2]}}\nD. "
                            "{{choices[3]}}\nAnswer:");
    cJSON_AddStringToObject(c, "doc_to_target", "answer");
    cJSON *ch = cJSON_AddArrayToObject(c, "doc_to_choice");
    for (const char *l = "ABCD"; *l; l++)
        cJSON_AddItemToArray(ch, cJSON_CreateString((char[]){*l, 0}));
    StrBuf d = {0};
    if (s >= 0) mmlu_description(MMLU_PROMPT_CURRENT, s, &d);
    cJSON_AddStringToObject(c, "description", d.p ? d.p : "");
    strbuf_free(&d);
}

/* The task's config as the harness's TaskConfig.to_dict() dumps it (fields that are None left
 * out) from arc_easy.yaml / arc_challenge.yaml / truthfulqa_mc1.yaml / truthfulqa_mc2.yaml /
 * hellaswag.yaml / mmlu's template, with the dataset paths of 0.4.10 on. TruthfulQA's
 * doc_to_text is the Jinja text the YAML holds; MC2's process_results (and HellaSwag's
 * process_docs) names the function the harness would print the source of. */
static cJSON *task_config(const char *name, const McTask *task, const HarnessVersion *v,
                          int shots) {
    const int tqa = task->is_truthfulqa;
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "task", name);
    if (task->kind == MC_KIND_MMLU)
        cJSON_AddStringToObject(c, "task_alias", name + (strncmp(name, "mmlu_", 5) == 0 ? 5 : 0));
    if (task->kind == MC_KIND_HELLASWAG || task->kind == MC_KIND_MMLU) {
        dataset_fields(c, task, name);
    } else {
        cJSON *tag = cJSON_AddArrayToObject(c, "tag");
        cJSON_AddItemToArray(tag, cJSON_CreateString(tqa ? "truthfulqa" : "ai2_arc"));
        cJSON_AddStringToObject(c, "dataset_path",
                                tqa ? "truthfulqa/truthful_qa" : "allenai/ai2_arc");
        cJSON_AddStringToObject(c, "dataset_name",
                                tqa ? "multiple_choice"
                                    : (task->id == MC_ARC_EASY ? "ARC-Easy" : "ARC-Challenge"));
        if (!tqa) cJSON_AddStringToObject(c, "training_split", "train");
        cJSON_AddStringToObject(c, "validation_split", "validation");
        if (!tqa) cJSON_AddStringToObject(c, "test_split", "test");
    }
    if (tqa) {
        StrBuf t = {0};
        strbuf_puts(&t, "{% set prompt_qa = '");
        strbuf_puts(&t, MC_TRUTHFULQA_PRIMER);
        strbuf_puts(&t, "'%}{{prompt_qa + '\n\nQ: ' + question + '\nA:'}}");
        cJSON_AddStringToObject(c, "doc_to_text", t.p ? t.p : "");
        strbuf_free(&t);
        cJSON_AddNumberToObject(c, "doc_to_target", 0);
        cJSON_AddStringToObject(c, "doc_to_choice",
                                task->id == MC_TRUTHFULQA_MC1 ? "{{mc1_targets.choices}}"
                                                              : "{{mc2_targets.choices}}");
        if (task->id == MC_TRUTHFULQA_MC2)
            cJSON_AddStringToObject(c, "process_results", "process_results_mc2");
    } else if (task->kind == MC_KIND_ARC) {
        cJSON_AddStringToObject(c, "doc_to_text", "Question: {{question}}\nAnswer:");
        cJSON_AddStringToObject(c, "doc_to_target", "{{choices.label.index(answerKey)}}");
        cJSON_AddStringToObject(c, "doc_to_choice", "{{choices.text}}");
    }
    if (task->kind == MC_KIND_ARC || tqa) cJSON_AddStringToObject(c, "description", "");
    cJSON_AddStringToObject(c, "target_delimiter", task->prompt.target_delimiter);
    cJSON_AddStringToObject(c, "fewshot_delimiter", "\n\n");
    if (task->kind == MC_KIND_MMLU) {
        cJSON *fc = cJSON_AddObjectToObject(c, "fewshot_config");
        cJSON_AddStringToObject(fc, "sampler", "first_n");
    }
    cJSON_AddNumberToObject(c, "num_fewshot", shots);
    cJSON *metrics = cJSON_AddArrayToObject(c, "metric_list");
    const char *const *names;
    int n = mc_harness_metrics(task, &names);
    for (int k = 0; k < n; k++) cJSON_AddItemToArray(metrics, metric_entry(names[k]));
    cJSON_AddStringToObject(c, "output_type", "multiple_choice");
    cJSON_AddNumberToObject(c, "repeats", 1);
    cJSON_AddTrueToObject(c, "should_decontaminate");
    cJSON_AddStringToObject(c, "doc_to_decontamination_query",
                            tqa                         ? "question"
                            : task->kind == MC_KIND_ARC ? "Question: {{question}}\nAnswer:"
                                                        : "{{query}}");
    cJSON *meta = cJSON_AddObjectToObject(c, "metadata");
    pyjson_add_float(meta, "version", harness_task_version(v, task));
    return c;
}

int results_mc_add_task(cJSON *root, const McTask *task, const HarnessVersion *v,
                        const McMetrics *m, int shots, int n_original, int n_effective) {
    return results_mc_add_entry(root, task->name, task->name, task, v, m, shots, n_original,
                                n_effective);
}

int results_mc_add_entry(cJSON *root, const char *name, const char *alias, const McTask *task,
                         const HarnessVersion *v, const McMetrics *m, int shots, int n_original,
                         int n_effective) {
    cJSON *sec[N_SECTIONS];
    for (int i = 0; i < N_SECTIONS; i++) {
        sec[i] = cJSON_GetObjectItemCaseSensitive(root, SECTIONS[i]);
        if (!sec[i]) return -1;
    }
    cJSON *cfg = task_config(name, task, v, shots);
    if (!cfg || !cJSON_AddItemToObject(sec[2], name, cfg)) {
        cJSON_Delete(cfg);
        return -1;
    }
    cJSON *res = cJSON_AddObjectToObject(sec[0], name);
    cJSON *hib = cJSON_AddObjectToObject(sec[5], name);
    cJSON *ns = cJSON_AddObjectToObject(sec[6], name);
    if (!res || !hib || !ns) return -1;
    cJSON_AddStringToObject(res, "alias", alias);
    for (int k = 0; k < m->n_metrics; k++) {
        results_add_metric(res, m->m[k].name, m->m[k].value, m->m[k].stderr_);
        cJSON_AddTrueToObject(hib, m->m[k].name);
    }
    if (task->kind != MC_KIND_MMLU) cJSON_AddArrayToObject(sec[1], name);
    pyjson_add_float(sec[3], name, harness_task_version(v, task));
    cJSON_AddNumberToObject(sec[4], name, shots);
    cJSON_AddNumberToObject(ns, "original", n_original);
    cJSON_AddNumberToObject(ns, "effective", n_effective);
    return 0;
}

int results_mc_add_group(cJSON *root, const char *name, const char *alias,
                         const char *const *subtasks, int n_subtasks, double acc, double stderr_,
                         int version) {
    cJSON *res = cJSON_AddObjectToObject(cJSON_GetObjectItemCaseSensitive(root, "results"), name);
    cJSON *sub =
        cJSON_AddArrayToObject(cJSON_GetObjectItemCaseSensitive(root, "group_subtasks"), name);
    cJSON *hib =
        cJSON_AddObjectToObject(cJSON_GetObjectItemCaseSensitive(root, "higher_is_better"), name);
    if (!res || !sub || !hib) return -1;
    cJSON_AddStringToObject(res, "alias", alias);
    results_add_metric(res, "acc", acc, stderr_);
    for (int i = 0; i < n_subtasks; i++) cJSON_AddItemToArray(sub, cJSON_CreateString(subtasks[i]));
    cJSON_AddTrueToObject(hib, "acc");
    cJSON_AddNumberToObject(cJSON_GetObjectItemCaseSensitive(root, "versions"), name, version);
    return 0;
}

static int by_key(const void *a, const void *b) {
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string ? x->string : "", y->string ? y->string : "");
}

/* Reorders obj's members by key (descending when reverse), keeping cJSON's list invariant
 * (the first member's prev is the last one). */
static void sort_members(cJSON *obj, int reverse) {
    int n = cJSON_GetArraySize(obj);
    cJSON **v = n > 1 ? malloc(sizeof(cJSON *) * (size_t)n) : NULL;
    if (!v) return; /* out of memory: the order stays as added */
    int i = 0;
    for (cJSON *c = obj->child; c; c = c->next) v[i++] = c;
    qsort(v, (size_t)n, sizeof *v, by_key);
    for (i = 0; reverse && i < n / 2; i++) {
        cJSON *t = v[i];
        v[i] = v[n - 1 - i];
        v[n - 1 - i] = t;
    }
    for (i = 0; i < n; i++) {
        v[i]->prev = v[i > 0 ? i - 1 : n - 1];
        v[i]->next = i + 1 < n ? v[i + 1] : NULL;
    }
    obj->child = v[0];
    free(v);
}

void results_mc_finish(cJSON *root) {
    for (int i = 0; i < N_SECTIONS; i++)
        sort_members(cJSON_GetObjectItemCaseSensitive(root, SECTIONS[i]),
                     strcmp(SECTIONS[i], "group_subtasks") == 0);
    sort_members(cJSON_GetObjectItemCaseSensitive(root, "diagnostics"), 0);
}

int results_write_json(const char *path, const cJSON *root, CkError *err) {
    StrBuf text = {0};
    int rc = pyjson_dump(root, 2, &text) == 0 && strbuf_put(&text, "\n", 1) == 0
                 ? fileio_write_atomic(path, text.p, text.n, err)
                 : ck_fail(err, "%s: out of memory", path);
    strbuf_free(&text);
    return rc;
}

static cJSON *int_array(const int *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

cJSON *results_mc_item_json(const char *task, const McItem *item, const McItemResult *r,
                            uint64_t fingerprint) {
    char fp[20];
    snprintf(fp, sizeof fp, "%016" PRIx64, fingerprint);
    McItemScores sc;
    mc_item_scores(r, &sc);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "task", task);
    cJSON_AddNumberToObject(o, "doc_index", r->doc_index);
    cJSON_AddStringToObject(o, "doc_id", item ? item->doc->id : "");
    cJSON_AddStringToObject(o, "fingerprint", fp);
    cJSON_AddNumberToObject(o, "gold", r->gold);
    cJSON_AddNumberToObject(o, "chosen", mc_argmax(r->ll, r->n_choices));
    cJSON_AddNumberToObject(o, "acc", sc.acc);
    cJSON_AddNumberToObject(o, "acc_norm", sc.acc_norm);
    cJSON_AddNumberToObject(o, "mc2", sc.mc2);
    cJSON_AddNumberToObject(o, "context_tokens", r->n_ctx_tokens);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    for (int i = 0; i < r->n_choices; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "index", i);
        cJSON_AddNumberToObject(c, "label", r->labels[i]);
        cJSON_AddNumberToObject(c, "ll", r->ll[i]);
        cJSON_AddBoolToObject(c, "is_greedy", r->is_greedy[i]);
        cJSON_AddNumberToObject(c, "tokens_n", r->n_tokens[i]);
        cJSON_AddNumberToObject(c, "chars", r->n_chars[i]);
        cJSON_AddNumberToObject(c, "bytes", r->n_bytes[i]);
        cJSON_AddBoolToObject(c, "fallback", r->fallback[i]);
        cJSON_AddNumberToObject(c, "truncated", r->truncated[i]);
        cJSON_AddItemToObject(c, "tokens",
                              int_array(r->cont_tokens + r->cont_offsets[i],
                                        r->cont_offsets[i + 1] - r->cont_offsets[i]));
        cJSON_AddItemToArray(choices, c);
    }
    return o;
}

/* An integer field of o, or a failure naming it. */
static int get_int(const cJSON *o, const char *name, int *out, const char *where,
                   const char *prefix, CkError *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v);
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return ck_fail(err, "%s: %s%s: expected an integer", where, prefix, name);
    *out = (int)v->valuedouble;
    return 0;
}

int results_mc_item_parse(const cJSON *rec, const char **task, uint64_t *fingerprint,
                          McItemResult *r, const char *where, CkError *err) {
    memset(r, 0, sizeof *r);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(rec, "task");
    const cJSON *fp = cJSON_GetObjectItemCaseSensitive(rec, "fingerprint");
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(rec, "choices");
    if (!cJSON_IsString(t)) return ck_fail(err, "%s: task: expected a string", where);
    if (!cJSON_IsString(fp) || sscanf(fp->valuestring, "%" SCNx64, fingerprint) != 1)
        return ck_fail(err, "%s: fingerprint: expected a hex string", where);
    int n = cJSON_IsArray(choices) ? cJSON_GetArraySize(choices) : 0;
    if (n < 1) return ck_fail(err, "%s: choices: expected a non-empty array", where);
    *task = t->valuestring;
    int total = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, choices) {
        const cJSON *toks = cJSON_GetObjectItemCaseSensitive(c, "tokens");
        if (!cJSON_IsArray(toks))
            return ck_fail(err, "%s: choices[].tokens: expected an array", where);
        total += cJSON_GetArraySize(toks);
    }
    if (mc_item_result_alloc(r, n, total, err) != 0) return -1;
    int rc = 0;
    rc |= get_int(rec, "doc_index", &r->doc_index, where, "", err);
    if (!rc) rc |= get_int(rec, "gold", &r->gold, where, "", err);
    if (!rc) rc |= get_int(rec, "context_tokens", &r->n_ctx_tokens, where, "", err);
    int i = 0;
    cJSON_ArrayForEach(c, choices) {
        if (rc) break;
        char prefix[32];
        snprintf(prefix, sizeof prefix, "choices[%d].", i);
        const cJSON *ll = cJSON_GetObjectItemCaseSensitive(c, "ll");
        if (!cJSON_IsNumber(ll)) {
            rc = ck_fail(err, "%s: %sll: expected a number", where, prefix);
            break;
        }
        r->ll[i] = ll->valuedouble;
        rc |= get_int(c, "label", &r->labels[i], where, prefix, err);
        if (!rc) rc |= get_int(c, "tokens_n", &r->n_tokens[i], where, prefix, err);
        if (!rc) rc |= get_int(c, "chars", &r->n_chars[i], where, prefix, err);
        if (!rc) rc |= get_int(c, "bytes", &r->n_bytes[i], where, prefix, err);
        if (!rc) rc |= get_int(c, "is_greedy", &r->is_greedy[i], where, prefix, err);
        if (!rc) rc |= get_int(c, "fallback", &r->fallback[i], where, prefix, err);
        if (!rc) rc |= get_int(c, "truncated", &r->truncated[i], where, prefix, err);
        const cJSON *toks = cJSON_GetObjectItemCaseSensitive(c, "tokens"), *tk;
        r->cont_offsets[i + 1] = r->cont_offsets[i] + cJSON_GetArraySize(toks);
        int j = r->cont_offsets[i];
        cJSON_ArrayForEach(tk, toks) r->cont_tokens[j++] = (int)tk->valuedouble;
        i++;
    }
    if (!rc && (r->gold < 0 || r->gold >= n))
        rc = ck_fail(err, "%s: gold: %d is not a choice index", where, r->gold);
    if (rc) mc_item_result_free(r);
    return rc ? -1 : 0;
}
