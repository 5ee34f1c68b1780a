/* mc_samples.c — the harness's --log_samples records (see mc_samples.h). Steps: the docs in
 * the dataset's shape (DocSource: ARC lines parsed again, TruthfulQA's two target sets), then
 * one record per item. */
#include "eval/mc_samples.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/benchmarks.h"
#include "eval/pyjson.h"
#include "util/fileio.h"
#include "util/sha256.h"

/* Where the Hugging Face docs come from: the ARC file's text with its line starts, or the
 * TruthfulQA file read with both target sets. */
typedef struct {
    const char *path;
    char *text;
    size_t size;
    size_t *line_at; /* [n_lines + 1] offsets of line starts; line_at[n_lines] = size */
    int n_lines;
    McDocSet mc1, mc2;
    int is_truthfulqa;
} DocSource;

static void source_free(DocSource *s) {
    free(s->text);
    free(s->line_at);
    benchmarks_free(&s->mc1);
    benchmarks_free(&s->mc2);
}

static int source_open(DocSource *s, const McTask *task, const char *path, CkError *err) {
    memset(s, 0, sizeof *s);
    s->path = path;
    s->is_truthfulqa = task->is_truthfulqa;
    if (s->is_truthfulqa)
        return benchmarks_load_truthfulqa(&s->mc1, path, TQA_MC1, err) == 0 &&
                       benchmarks_load_truthfulqa(&s->mc2, path, TQA_MC2, err) == 0
                   ? 0
                   : ck_wrap(err, "--log-samples");
    s->text = fileio_read_text(path, (size_t)1 << 32, &s->size, err);
    if (!s->text) return -1;
    int n = 1;
    for (size_t i = 0; i < s->size; i++) n += s->text[i] == '\n';
    s->line_at = malloc(sizeof(size_t) * (size_t)(n + 1));
    if (!s->line_at) return ck_fail(err, "out of memory");
    s->line_at[0] = 0;
    s->n_lines = 1;
    for (size_t i = 0; i < s->size; i++)
        if (s->text[i] == '\n') s->line_at[s->n_lines++] = i + 1;
    s->line_at[s->n_lines] = s->size;
    return 0;
}

/* {"choices": [...], "labels": [...]} of one TruthfulQA target set */
static cJSON *tqa_targets(const McDoc *d) {
    cJSON *o = cJSON_CreateObject(), *c = cJSON_AddArrayToObject(o, "choices"),
          *l = cJSON_AddArrayToObject(o, "labels");
    for (int i = 0; c && l && i < d->n_choices; i++) {
        cJSON_AddItemToArray(c, cJSON_CreateString(d->choices[i]));
        cJSON_AddItemToArray(l, cJSON_CreateNumber(d->labels[i]));
    }
    return o;
}

/* The string field `name` of o, or NULL. */
static const char *str_field(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ARC's doc from its line: {"id", "question", "choices": {"text", "label"}, "answerKey"}, the
 * fields in the order of the dataset's features. */
static cJSON *arc_doc(const DocSource *s, const McDoc *d, CkError *err) {
    if (d->line < 1 || d->line > s->n_lines) {
        ck_fail(err, "%s:%d: no such line (changed since it was read?)", s->path, d->line);
        return NULL;
    }
    size_t a = s->line_at[d->line - 1], b = s->line_at[d->line];
    cJSON *rec = cJSON_ParseWithLength(s->text + a, b - a);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(rec, "question");
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(q, "choices");
    const char *id = str_field(rec, "id"), *stem = str_field(q, "stem"),
               *key = str_field(rec, "answerKey");
    if (!id || !stem || !key || cJSON_GetArraySize(choices) != d->n_choices) {
        cJSON_Delete(rec);
        ck_fail(err, "%s:%d: not the ARC record read before (changed since?)", s->path, d->line);
        return NULL;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "id", id);
    cJSON_AddStringToObject(doc, "question", stem);
    cJSON *ch = cJSON_AddObjectToObject(doc, "choices");
    cJSON *text = cJSON_AddArrayToObject(ch, "text"), *label = cJSON_AddArrayToObject(ch, "label");
    const cJSON *c;
    cJSON_ArrayForEach(c, choices) {
        const char *t = str_field(c, "text"), *l = str_field(c, "label");
        cJSON_AddItemToArray(text, cJSON_CreateString(t ? t : ""));
        cJSON_AddItemToArray(label, cJSON_CreateString(l ? l : ""));
    }
    cJSON_AddStringToObject(doc, "answerKey", key);
    cJSON_Delete(rec);
    return doc;
}

/* The Hugging Face doc of item (its doc_index-th doc). */
static cJSON *hf_doc(const DocSource *s, const McItem *item, CkError *err) {
    if (!s->is_truthfulqa) return arc_doc(s, item->doc, err);
    const int i = item->doc_index;
    if (i < 0 || i >= s->mc1.n || i >= s->mc2.n) {
        ck_fail(err, "%s: no record %d (changed since it was read?)", s->path, i);
        return NULL;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "question", s->mc1.docs[i].question);
    cJSON_AddItemToObject(doc, "mc1_targets", tqa_targets(&s->mc1.docs[i]));
    cJSON_AddItemToObject(doc, "mc2_targets", tqa_targets(&s->mc2.docs[i]));
    return doc;
}

/* SHA-256 hex of text (the harness's hash_string). */
static void hash_text(const char *text, char out[65]) {
    sha256_hex(text, strlen(text), out);
}

/* [str(ll), str(is_greedy)] as Python's str() writes a (float, bool) response */
static cJSON *resp_pair(double ll, int greedy) {
    char num[32];
    pyjson_float_repr(ll, num);
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, cJSON_CreateString(num));
    cJSON_AddItemToArray(a, cJSON_CreateString(greedy ? "True" : "False"));
    return a;
}

/* arguments, resps and filtered_resps of item's requests */
static void add_requests(cJSON *rec, const McItem *item, const McItemResult *r) {
    cJSON *args = cJSON_AddObjectToObject(rec, "arguments");
    const char *delim = item->task->prompt.target_delimiter;
    StrBuf cont = {0};
    for (int c = 0; c < r->n_choices; c++) {
        char key[32];
        snprintf(key, sizeof key, "gen_args_%d", c);
        cJSON *a = cJSON_AddObjectToObject(args, key);
        strbuf_clear(&cont);
        strbuf_puts(&cont, delim);
        strbuf_puts(&cont, item->doc->choices[c]);
        cJSON_AddStringToObject(a, "arg_0", item->context);
        cJSON_AddStringToObject(a, "arg_1", cont.p ? cont.p : "");
    }
    strbuf_free(&cont);
    cJSON *resps = cJSON_AddArrayToObject(rec, "resps");
    cJSON *filtered = cJSON_AddArrayToObject(rec, "filtered_resps");
    for (int c = 0; c < r->n_choices; c++) {
        cJSON *one = cJSON_CreateArray();
        cJSON_AddItemToArray(one, resp_pair(r->ll[c], r->is_greedy[c]));
        cJSON_AddItemToArray(resps, one);
        cJSON_AddItemToArray(filtered, resp_pair(r->ll[c], r->is_greedy[c]));
    }
}

/* One record: builds it and appends its line to lines and its three hashes to hashes. */
static int put_record(const DocSource *s, const McTask *task, Mc2Variant mc2, const McItem *item,
                      const McItemResult *r, StrBuf *lines, StrBuf *hashes, CkError *err) {
    cJSON *doc = hf_doc(s, item, err);
    if (!doc) return ck_wrap(err, "--log-samples: %s doc %d", task->name, item->doc_index);
    StrBuf text = {0};
    char doc_hash[65], prompt_hash[65], target_hash[65], target[16];
    int bad = pyjson_dump(doc, 2, &text);
    hash_text(text.p ? text.p : "", doc_hash);
    hash_text(item->context, prompt_hash);
    snprintf(target, sizeof target, "%d", task->is_truthfulqa ? 0 : item->doc->gold);
    hash_text(target, target_hash);
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddNumberToObject(rec, "doc_id", item->doc_index);
    cJSON_AddItemToObject(rec, "doc", doc);
    cJSON_AddStringToObject(rec, "target", target);
    add_requests(rec, item, r);
    cJSON_AddStringToObject(rec, "filter", "none");
    const char *const *names;
    int n_metrics = mc_harness_metrics(task, &names);
    cJSON *list = cJSON_AddArrayToObject(rec, "metrics");
    for (int k = 0; k < n_metrics; k++) cJSON_AddItemToArray(list, cJSON_CreateString(names[k]));
    cJSON_AddStringToObject(rec, "doc_hash", doc_hash);
    cJSON_AddStringToObject(rec, "prompt_hash", prompt_hash);
    cJSON_AddStringToObject(rec, "target_hash", target_hash);
    for (int k = 0; k < n_metrics; k++)
        bad |= pyjson_add_float(rec, names[k], mc_item_metric(task, mc2, r, names[k]));
    bad |= pyjson_dump(rec, -1, lines) != 0 || strbuf_put(lines, "\n", 1) != 0;
    bad |= strbuf_puts(hashes, doc_hash) != 0 || strbuf_puts(hashes, prompt_hash) != 0 ||
           strbuf_puts(hashes, target_hash) != 0;
    cJSON_Delete(rec);
    strbuf_free(&text);
    return bad ? ck_fail(err, "out of memory") : 0;
}

int mc_samples_build(const McTask *task, Mc2Variant mc2, const char *test_path, const McItem *items,
                     const McItemResult *results, int n, StrBuf *lines, char task_hash[65],
                     CkError *err) {
    DocSource s;
    int rc = source_open(&s, task, test_path, err);
    StrBuf hashes = {0};
    for (int i = 0; rc == 0 && i < n; i++)
        rc = put_record(&s, task, mc2, &items[i], &results[i], lines, &hashes, err);
    if (rc == 0) hash_text(hashes.p ? hashes.p : "", task_hash);
    strbuf_free(&hashes);
    source_free(&s);
    return rc;
}
