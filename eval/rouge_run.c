/* rouge_run.c — `cutkit eval rouge` as a library call (see rouge.h): read every record, score
 * it, and only then write items.jsonl and rouge.json, so that bad input leaves nothing behind. */
#include "eval/rouge.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>

#include "util/fileio.h"
#include "util/jsonl.h"
#include "util/strbuf.h"

#define ROUGE_MAX_INPUT ((size_t)1 << 31) /* bytes of one input file */

void rouge_run_options_init(RougeRunOptions *o) {
    memset(o, 0, sizeof *o);
    o->prediction_field = "prediction";
    o->reference_field = "reference";
    rouge_bootstrap_options_init(&o->boot);
}

typedef struct {
    StrBuf items;                        /* the items.jsonl text */
    RougeScore (*scores)[ROUGE_N_TYPES]; /* one row per item */
    int n, cap;
} RunState;

static int field_error(const char *path, long line, const char *field, const char *what,
                       CkError *err) {
    return ck_fail(err, "%s: line %ld: field '%s': %s", path, line, field, what);
}

/* The record's prediction: a string field. */
static int get_prediction(const cJSON *rec, const char *field, const char *path, long line,
                          const char **text, CkError *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, field);
    if (!v) return field_error(path, line, field, "missing", err);
    if (!cJSON_IsString(v)) return field_error(path, line, field, "expected a string", err);
    *text = v->valuestring;
    return 0;
}

/* The record's references: a string, or a non-empty array of strings (rouge_score's
 * score_multi); *refs is malloc'd, its strings borrowed from rec. */
static int get_references(const cJSON *rec, const char *field, const char *path, long line,
                          const char ***refs, int *n, int *is_list, CkError *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, field);
    if (!v) return field_error(path, line, field, "missing", err);
    *is_list = cJSON_IsArray(v);
    *n = *is_list ? cJSON_GetArraySize(v) : 1;
    if (!cJSON_IsString(v) && !(*is_list && *n > 0))
        return field_error(path, line, field, "expected a string or a non-empty array of strings",
                           err);
    *refs = malloc(sizeof(char *) * (size_t)*n);
    if (!*refs) return ck_fail(err, "out of memory");
    if (!*is_list) {
        (*refs)[0] = v->valuestring;
        return 0;
    }
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (!cJSON_IsString(e)) {
            free(*refs);
            char what[64];
            snprintf(what, sizeof what, "element %d is not a string", k);
            return field_error(path, line, field, what, err);
        }
        (*refs)[k++] = e->valuestring;
    }
    return 0;
}

static cJSON *score_json(const RougeScore *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "precision", s->precision);
    cJSON_AddNumberToObject(o, "recall", s->recall);
    cJSON_AddNumberToObject(o, "fmeasure", s->fmeasure);
    return o;
}

/* The item's id: the data record's, else the reference record's; two different ones are an
 * error (the files are paired by order, and the ids say the order is wrong). */
static int item_id(const cJSON *rec, const cJSON *ref_rec, const RougeRunOptions *o, long line,
                   long ref_line, const cJSON **id, CkError *err) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(rec, "id");
    const cJSON *b = ref_rec ? cJSON_GetObjectItemCaseSensitive(ref_rec, "id") : NULL;
    if (a && b && !cJSON_Compare(a, b, 1))
        return ck_fail(err,
                       "%s: line %ld: field 'id' differs from %s: line %ld (records are "
                       "paired in order)",
                       o->data, line, o->references, ref_line);
    *id = a ? a : b;
    return 0;
}

/* Appends one items.jsonl line: the data line, the reference line (two files), the id, the four
 * scores and, for a list of references, the index of the one each score came from. */
static int append_item(RunState *st, const RougeScore *s, const int *best, int is_list, long line,
                       long ref_line, const cJSON *id, CkError *err) {
    cJSON *rec = cJSON_CreateObject();
    cJSON_AddNumberToObject(rec, "line", (double)line);
    if (ref_line > 0) cJSON_AddNumberToObject(rec, "reference_line", (double)ref_line);
    if (id) cJSON_AddItemToObject(rec, "id", cJSON_Duplicate(id, 1));
    for (int t = 0; t < ROUGE_N_TYPES; t++)
        cJSON_AddItemToObject(rec, rouge_type_name((RougeType)t), score_json(&s[t]));
    if (is_list) {
        cJSON *b = cJSON_AddObjectToObject(rec, "best_reference");
        for (int t = 0; t < ROUGE_N_TYPES; t++)
            cJSON_AddNumberToObject(b, rouge_type_name((RougeType)t), best[t]);
    }
    char *text = cJSON_PrintUnformatted(rec);
    cJSON_Delete(rec);
    int rc = text && strbuf_puts(&st->items, text) == 0 && strbuf_put(&st->items, "\n", 1) == 0;
    free(text);
    return rc ? 0 : ck_fail(err, "out of memory");
}

/* Makes room for one more row of scores. */
static int grow_rows(RunState *st, CkError *err) {
    if (st->n < st->cap) return 0;
    int cap = st->cap ? 2 * st->cap : 64;
    void *p = realloc(st->scores, sizeof *st->scores * (size_t)cap);
    if (!p) return ck_fail(err, "out of memory");
    st->scores = p;
    st->cap = cap;
    return 0;
}

/* Scores the pair held by rec (and ref_rec, the references file's record, when there is one). */
static int score_record(RunState *st, const RougeRunOptions *o, const cJSON *rec, long line,
                        const cJSON *ref_rec, long ref_line, CkError *err) {
    const char *prediction = NULL, **refs = NULL;
    const char *ref_path = ref_rec ? o->references : o->data;
    int n_refs = 0, is_list = 0, best[ROUGE_N_TYPES] = {0};
    const cJSON *id = NULL;
    if (get_prediction(rec, o->prediction_field, o->data, line, &prediction, err) != 0 ||
        get_references(ref_rec ? ref_rec : rec, o->reference_field, ref_path,
                       ref_rec ? ref_line : line, &refs, &n_refs, &is_list, err) != 0)
        return -1;
    int rc = grow_rows(st, err);
    if (rc == 0) rc = item_id(rec, ref_rec, o, line, ref_line, &id, err);
    if (rc == 0) {
        RougeScore *s = st->scores[st->n];
        rc = rouge_score_multi(refs, n_refs, prediction, o->stem, s, best, err);
        if (rc == 0) rc = append_item(st, s, best, is_list, line, ref_rec ? ref_line : 0, id, err);
        if (rc == 0) st->n++;
    }
    free(refs);
    return rc;
}

/* Walks the data file (and the references file in step with it), scoring each record. */
static int score_files(const RougeRunOptions *o, const char *text, size_t len, const char *ref_text,
                       size_t ref_len, RunState *st, CkError *err) {
    JsonlCursor c, rc;
    jsonl_init(&c, text, len);
    jsonl_init(&rc, ref_text ? ref_text : "", ref_text ? ref_len : 0);
    for (;;) {
        cJSON *rec = NULL, *ref_rec = NULL;
        int got = jsonl_next_object(&c, o->data, 0, &rec, err);
        int ref_got = got;
        if (got >= 0 && ref_text) ref_got = jsonl_next_object(&rc, o->references, 0, &ref_rec, err);
        if (got < 0 || ref_got < 0) {
            cJSON_Delete(rec);
            cJSON_Delete(ref_rec);
            return -1;
        }
        if (got != ref_got) {
            cJSON_Delete(rec);
            cJSON_Delete(ref_rec);
            return ck_fail(err, "%s has %s records than %s (records are paired in order)", o->data,
                           got ? "more" : "fewer", o->references);
        }
        if (!got) break;
        int r = score_record(st, o, rec, c.line, ref_rec, rc.line, err);
        cJSON_Delete(rec);
        cJSON_Delete(ref_rec);
        if (r != 0) return -1;
    }
    if (st->n == 0) return ck_fail(err, "%s: no records", o->data);
    return 0;
}

static int read_and_score(const RougeRunOptions *o, RunState *st, CkError *err) {
    size_t len = 0, ref_len = 0;
    char *text = fileio_read_text(o->data, ROUGE_MAX_INPUT, &len, err), *ref_text = NULL;
    if (!text) return -1;
    if (o->references &&
        !(ref_text = fileio_read_text(o->references, ROUGE_MAX_INPUT, &ref_len, err))) {
        free(text);
        return -1;
    }
    int rc = score_files(o, text, len, ref_text, ref_len, st, err);
    free(text);
    free(ref_text);
    return rc;
}

/* A seed as a JSON number when a double holds it exactly, else as a decimal string. */
static cJSON *seed_json(uint64_t seed) {
    if (seed <= ((uint64_t)1 << 53)) return cJSON_CreateNumber((double)seed);
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)seed);
    return cJSON_CreateString(buf);
}

static cJSON *settings_json(const RougeRunOptions *o) {
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "semantics", "rouge-score (google-research/rouge) RougeScorer");
    cJSON_AddStringToObject(s, "data", o->data);
    if (o->references)
        cJSON_AddStringToObject(s, "references", o->references);
    else
        cJSON_AddNullToObject(s, "references");
    cJSON_AddStringToObject(s, "prediction_field", o->prediction_field);
    cJSON_AddStringToObject(s, "reference_field", o->reference_field);
    cJSON_AddStringToObject(s, "tokenizer", "rouge_score default: lowercase, [^a-z0-9]+ as spaces");
    cJSON_AddStringToObject(s, "stemmer",
                            o->stem ? "porter (nltk NLTK_EXTENSIONS, tokens > 3 "
                                      "chars)"
                                    : "none");
    cJSON_AddStringToObject(s, "rougeLsum_sentences", "newline");
    cJSON_AddStringToObject(s, "multiple_references", "max fmeasure per type (score_multi)");
    cJSON_AddStringToObject(s, "aggregation", "mean over items of each of P, R, F");
    return s;
}

/* rouge.json: n, the settings, the means and, when computed, the bootstrap percentiles. */
static char *summary_text(const RougeRunOptions *o, const RougeSummary *sum) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "n", sum->n);
    cJSON *m = cJSON_AddObjectToObject(root, "scores");
    for (int t = 0; t < ROUGE_N_TYPES; t++)
        cJSON_AddItemToObject(m, rouge_type_name((RougeType)t), score_json(&sum->mean[t]));
    if (o->bootstrap) {
        cJSON *b = cJSON_AddObjectToObject(root, "bootstrap");
        cJSON_AddNumberToObject(b, "samples", o->boot.samples);
        cJSON_AddNumberToObject(b, "confidence", o->boot.confidence);
        cJSON_AddItemToObject(b, "seed", seed_json(o->boot.seed));
        for (int t = 0; t < ROUGE_N_TYPES; t++) {
            cJSON *bt = cJSON_AddObjectToObject(b, rouge_type_name((RougeType)t));
            cJSON_AddItemToObject(bt, "low", score_json(&sum->low[t]));
            cJSON_AddItemToObject(bt, "mid", score_json(&sum->mid[t]));
            cJSON_AddItemToObject(bt, "high", score_json(&sum->high[t]));
        }
    }
    cJSON_AddItemToObject(root, "settings", settings_json(o));
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

/* Writes OUT/items.jsonl, then OUT/rouge.json (the one that says the run is complete). */
static int write_outputs(const RougeRunOptions *o, const RunState *st, const char *summary,
                         CkError *err) {
    char path[4096];
    if (fileio_make_dirs(o->out, err) != 0) return -1;
    if (fileio_path(path, sizeof path, o->out, "items.jsonl") != 0)
        return ck_fail(err, "%s: path too long", o->out);
    if (fileio_write_atomic(path, st->items.p ? st->items.p : "", st->items.n, err) != 0) return -1;
    if (fileio_path(path, sizeof path, o->out, "rouge.json") != 0)
        return ck_fail(err, "%s: path too long", o->out);
    StrBuf b = {0};
    if (strbuf_puts(&b, summary) != 0 || strbuf_put(&b, "\n", 1) != 0) {
        strbuf_free(&b);
        return ck_fail(err, "out of memory");
    }
    int rc = fileio_write_atomic(path, b.p, b.n, err);
    strbuf_free(&b);
    return rc;
}

int rouge_run(const RougeRunOptions *o, RougeSummary *summary, CkError *err) {
    RunState st;
    memset(&st, 0, sizeof st);
    RougeSummary sum;
    memset(&sum, 0, sizeof sum);
    char *text = NULL;
    int rc = -1;
    if (read_and_score(o, &st, err) != 0) goto done;
    sum.n = st.n;
    rouge_mean((const RougeScore(*)[ROUGE_N_TYPES])st.scores, st.n, sum.mean);
    if (o->bootstrap && rouge_bootstrap((const RougeScore(*)[ROUGE_N_TYPES])st.scores, st.n,
                                        &o->boot, sum.low, sum.mid, sum.high, err) != 0)
        goto done;
    if (!(text = summary_text(o, &sum))) {
        ck_fail(err, "out of memory");
        goto done;
    }
    if (write_outputs(o, &st, text, err) != 0) goto done;
    if (summary) *summary = sum;
    rc = 0;
done:
    free(text);
    free(st.scores);
    strbuf_free(&st.items);
    return rc;
}
