/* items.c — see items.h. */
#include "reports/items.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/jsonl.h"

static const ItemMetric ITEM_METRICS[] = {
    {"arc_c_acc_norm", ITEMS_MC, "arc_challenge", "acc_norm", 100.0, NULL, NULL},
    {"tqa_mc1", ITEMS_MC, "truthfulqa_mc1", "acc", 100.0, NULL, NULL},
    {"tqa_mc2", ITEMS_MC, "truthfulqa_mc2", "mc2", 100.0, NULL, NULL},
    {"hellaswag_acc_norm", ITEMS_MC, "hellaswag", "acc_norm", 100.0, NULL, "hellaswag_llamacpp"},
    {"mmlu_acc", ITEMS_NONE, NULL, NULL, 0,
     "the MMLU column is a macro average over 57 subject tasks, not a mean over items", NULL},
    {"avg_open_llm_v1", ITEMS_NONE, NULL, NULL, 0, "Avg. is derived from four other columns", NULL},
    {"rouge_lsum", ITEMS_NONE, NULL, NULL, 0, "ROUGE items are not read by the reports", NULL},
    {"win_rate", ITEMS_ANNOTATIONS, NULL, NULL, 100.0, NULL, NULL},
    {"error_rate", ITEMS_FACTS, NULL, "error", 100.0, NULL, NULL},
    {"misconception_rate", ITEMS_FACTS, NULL, "misconception", 100.0, NULL, NULL},
    {"detection_f1", ITEMS_NONE, NULL, NULL, 0,
     "detection.json holds aggregates only (counts over the \xCE\xBB grid, no per-example "
     "outcomes)",
     NULL},
};

/* Per-item files can be large (every choice's tokens in items.jsonl). */
#define ITEMS_MAX_BYTES ((size_t)4 << 30)

const ItemMetric *item_metric_for(const char *slug) {
    for (size_t i = 0; i < sizeof ITEM_METRICS / sizeof ITEM_METRICS[0]; i++)
        if (!strcmp(ITEM_METRICS[i].slug, slug)) return &ITEM_METRICS[i];
    return NULL;
}

const char *item_source_file(ItemSource s) {
    return s == ITEMS_MC            ? "eval/mc/items.jsonl"
           : s == ITEMS_ANNOTATIONS ? "eval/annotations.json"
           : s == ITEMS_FACTS       ? "eval/fact_items.jsonl"
                                    : "";
}

/* One outcome while a file is read: its key, value and where it came from. */
typedef struct {
    char *key;
    double value;
    long where; /* line (items.jsonl) or record (annotations.json) */
} Entry;

typedef struct {
    Entry *e;
    int n, cap;
} Entries;

static int entries_push(Entries *es, char *key, double value, long where) {
    if (!key) return -1;
    if (es->n == es->cap) {
        int cap = es->cap ? es->cap * 2 : 256;
        Entry *p = realloc(es->e, sizeof *p * (size_t)cap);
        if (!p) {
            free(key);
            return -1;
        }
        es->e = p;
        es->cap = cap;
    }
    es->e[es->n++] = (Entry){key, value, where};
    return 0;
}

static void entries_free(Entries *es) {
    for (int i = 0; i < es->n; i++) free(es->e[i].key);
    free(es->e);
    memset(es, 0, sizeof *es);
}

static int by_key_then_where(const void *p, const void *q) {
    const Entry *a = p, *b = q;
    int c = strcmp(a->key, b->key);
    return c ? c : (a->where > b->where) - (a->where < b->where);
}

/* Moves the entries, sorted by key, into s (present). A key twice is an error naming the
 * file (path) and both places (what: "line" or "record"). */
static int entries_finish(Entries *es, ItemScores *s, const char *path, const char *what,
                          CkError *err) {
    if (es->n > 1)
        qsort(es->e, (size_t)es->n, sizeof *es->e, by_key_then_where); /* e may be NULL */
    for (int i = 1; i < es->n; i++)
        if (!strcmp(es->e[i].key, es->e[i - 1].key))
            return ck_fail(err, "%s: %ss %ld and %ld are the same item (%s)", path, what,
                           es->e[i - 1].where, es->e[i].where, es->e[i].key);
    s->keys = malloc(sizeof(char *) * (size_t)(es->n + 1));
    s->values = malloc(sizeof(double) * (size_t)(es->n + 1));
    if (!s->keys || !s->values) return ck_fail(err, "out of memory");
    for (int i = 0; i < es->n; i++) {
        s->keys[i] = es->e[i].key;
        s->values[i] = es->e[i].value;
    }
    s->n = es->n;
    s->present = 1;
    es->n = 0; /* the keys belong to s now */
    return 0;
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Reads the run's per-item file of source into *text (malloc'd, *size its length; *path the
 * file's, malloc'd): returns 1, 0 when the run has no such file (nothing allocated), -1 with
 * err. */
static int read_source(const RunDir *rd, ItemSource source, char **path, char **text, size_t *size,
                       CkError *err) {
    *text = NULL;
    *path = join(rd->path, item_source_file(source));
    if (!*path) return ck_fail(err, "out of memory");
    if (access(*path, F_OK) != 0 && errno == ENOENT) {
        free(*path);
        *path = NULL;
        return 0;
    }
    *text = fileio_read_text(*path, ITEMS_MAX_BYTES, size, err);
    return 1;
}

/* The value of one items.jsonl record for metric m into es (records of other tasks are
 * skipped). */
static int mc_record(const cJSON *o, const ItemMetric *m, Entries *es, const char *path, long line,
                     CkError *err) {
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(o, "task");
    const cJSON *doc = cJSON_GetObjectItemCaseSensitive(o, "doc_index");
    if (!cJSON_IsString(task)) return ck_fail(err, "%s: line %ld: no \"task\" string", path, line);
    if (strcmp(task->valuestring, m->task) != 0 &&
        !(m->alt_task && !strcmp(task->valuestring, m->alt_task)))
        return 0;
    if (!cJSON_IsNumber(doc) || doc->valuedouble < 0 || doc->valuedouble > 9999999999.0 ||
        doc->valuedouble != floor(doc->valuedouble))
        return ck_fail(err, "%s: line %ld: \"doc_index\" is not an index", path, line);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, m->field);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return ck_fail(err, "%s: line %ld: no number at \"%s\"", path, line, m->field);
    char key[160];
    snprintf(key, sizeof key, "%.120s/%010.0f", task->valuestring, doc->valuedouble);
    if (entries_push(es, strdup(key), v->valuedouble, line) != 0)
        return ck_fail(err, "out of memory");
    return 0;
}

/* Walks items.jsonl (text) once, filling es[c] for every MC column c. */
static int mc_walk(const char *text, size_t size, const char *path, const ItemMetric *const *ms,
                   Entries *es, int n_cols, CkError *err) {
    JsonlCursor cur;
    jsonl_init(&cur, text, size);
    cJSON *o = NULL;
    int rc;
    while ((rc = jsonl_next_object(&cur, path, 1, &o, err)) == 1) {
        for (int c = 0; rc == 1 && c < n_cols; c++)
            if (ms[c] && ms[c]->source == ITEMS_MC &&
                mc_record(o, ms[c], &es[c], path, cur.line, err) != 0)
                rc = -1;
        cJSON_Delete(o);
        if (rc < 0) return -1;
    }
    return rc;
}

/* eval/mc/items.jsonl into the MC columns of it. */
static int load_mc(RunItems *it, const RunDir *rd, const ItemMetric *const *ms, CkError *err) {
    char *path, *text;
    size_t size = 0;
    int found = read_source(rd, ITEMS_MC, &path, &text, &size, err);
    if (found <= 0) return found;
    Entries *es = calloc((size_t)it->n_cols + 1, sizeof *es);
    int rc = text && es ? mc_walk(text, size, path, ms, es, it->n_cols, err) : -1;
    if (!es && text) ck_fail(err, "out of memory");
    for (int c = 0; rc == 0 && c < it->n_cols; c++)
        if (ms[c] && ms[c]->source == ITEMS_MC && es[c].n > 0)
            rc = entries_finish(&es[c], &it->cols[c], path, "line", err);
    for (int c = 0; es && c < it->n_cols; c++) entries_free(&es[c]);
    free(es);
    free(text);
    free(path);
    return rc;
}

/* AlpacaEval's preference as an outcome of the evaluated model: preference - 1 in [0, 1],
 * a legacy 0 a draw; NAN when missing or out of range. */
static double win_outcome(const cJSON *pref) {
    if (!cJSON_IsNumber(pref)) return NAN;
    double p = pref->valuedouble;
    if (p == 0) return 0.5;
    return p >= 1 && p <= 2 ? p - 1 : NAN;
}

/* The k-th occurrence of each instruction keyed "<instruction>\x1f<k>" (k > 1), entries sorted
 * by instruction then record; records without an outcome keep their place in the count. */
static int key_occurrences(Entries *all, Entries *kept, CkError *err) {
    if (all->n > 1) qsort(all->e, (size_t)all->n, sizeof *all->e, by_key_then_where);
    int k = 0;
    for (int i = 0; i < all->n; i++) {
        k = i > 0 && !strcmp(all->e[i].key, all->e[i - 1].key) ? k + 1 : 1;
        if (isnan(all->e[i].value)) continue;
        char *key;
        if (k == 1) {
            key = strdup(all->e[i].key);
        } else {
            size_t n = strlen(all->e[i].key) + 16;
            if ((key = malloc(n))) snprintf(key, n, "%s\x1f%d", all->e[i].key, k);
        }
        if (entries_push(kept, key, all->e[i].value, all->e[i].where) != 0)
            return ck_fail(err, "out of memory");
    }
    return 0;
}

/* The records of the parsed annotations.json into es (instruction, outcome, record). */
static int annotation_records(const cJSON *root, const char *path, Entries *es, CkError *err) {
    if (!cJSON_IsArray(root)) return ck_fail(err, "%s: expected a JSON array of records", path);
    long record = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, root) {
        record++;
        const cJSON *ins = cJSON_GetObjectItemCaseSensitive(r, "instruction");
        if (!cJSON_IsString(ins))
            return ck_fail(err, "%s: record %ld: no \"instruction\" string", path, record);
        const cJSON *pref = cJSON_GetObjectItemCaseSensitive(r, "preference");
        if (pref && !cJSON_IsNumber(pref) && !cJSON_IsNull(pref))
            return ck_fail(err, "%s: record %ld: \"preference\" is neither a number nor null", path,
                           record);
        if (entries_push(es, strdup(ins->valuestring), win_outcome(pref), record) != 0)
            return ck_fail(err, "out of memory");
    }
    return 0;
}

/* eval/annotations.json into the win-rate column c of it. */
static int load_annotations(RunItems *it, int c, const RunDir *rd, CkError *err) {
    char *path, *text;
    size_t size = 0;
    int found = read_source(rd, ITEMS_ANNOTATIONS, &path, &text, &size, err);
    if (found <= 0) return found;
    cJSON *root = text ? cJSON_ParseWithLength(text, size) : NULL;
    Entries all = {0}, kept = {0};
    int rc = -1;
    if (text && !root)
        ck_fail(err, "%s: not valid JSON", path);
    else if (root && annotation_records(root, path, &all, err) == 0 &&
             key_occurrences(&all, &kept, err) == 0)
        rc = entries_finish(&kept, &it->cols[c], path, "record", err);
    entries_free(&all);
    entries_free(&kept);
    cJSON_Delete(root);
    free(text);
    free(path);
    return rc;
}

/* The records of fact_items.jsonl (text) into es: instruction, the 0/1 outcome at field (NAN
 * where it is null: the item cannot show it), line. */
static int fact_records(const char *text, size_t size, const char *path, const char *field,
                        Entries *es, CkError *err) {
    JsonlCursor cur;
    jsonl_init(&cur, text, size);
    cJSON *o = NULL;
    int rc;
    while ((rc = jsonl_next_object(&cur, path, 1, &o, err)) == 1) {
        const cJSON *ins = cJSON_GetObjectItemCaseSensitive(o, "instruction");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
        if (!cJSON_IsString(ins))
            rc = ck_fail(err, "%s: line %ld: no \"instruction\" string", path, cur.line);
        else if (!cJSON_IsNull(v) &&
                 !(cJSON_IsNumber(v) && (v->valuedouble == 0 || v->valuedouble == 1)))
            rc = ck_fail(err, "%s: line %ld: \"%s\" is not 0, 1 or null", path, cur.line, field);
        else if (entries_push(es, strdup(ins->valuestring),
                              cJSON_IsNumber(v) ? v->valuedouble : NAN, cur.line) != 0)
            rc = ck_fail(err, "out of memory");
        cJSON_Delete(o);
        if (rc < 0) return -1;
    }
    return rc;
}

/* eval/fact_items.jsonl into the fact column c of it (keyed by instruction, as annotations). */
static int load_facts(RunItems *it, int c, const ItemMetric *m, const RunDir *rd, CkError *err) {
    char *path, *text;
    size_t size = 0;
    int found = read_source(rd, ITEMS_FACTS, &path, &text, &size, err);
    if (found <= 0) return found;
    Entries all = {0}, kept = {0};
    int rc = -1;
    if (text && fact_records(text, size, path, m->field, &all, err) == 0 &&
        key_occurrences(&all, &kept, err) == 0)
        rc = entries_finish(&kept, &it->cols[c], path, "line", err);
    entries_free(&all);
    entries_free(&kept);
    free(text);
    free(path);
    return rc;
}

int run_items_load(RunItems *it, const RunDir *rd, CkError *err) {
    int n_cols;
    const MetricColumn *cols = metric_all_columns(&n_cols);
    it->n_cols = n_cols;
    it->cols = calloc((size_t)n_cols, sizeof *it->cols);
    const ItemMetric **ms = calloc((size_t)n_cols, sizeof *ms);
    int rc = it->cols && ms ? 0 : ck_fail(err, "out of memory");
    for (int c = 0; rc == 0 && c < n_cols; c++) ms[c] = item_metric_for(cols[c].slug);
    if (rc == 0) rc = load_mc(it, rd, ms, err);
    for (int c = 0; rc == 0 && c < n_cols; c++)
        if (ms[c] && ms[c]->source == ITEMS_ANNOTATIONS)
            rc = load_annotations(it, c, rd, err);
        else if (ms[c] && ms[c]->source == ITEMS_FACTS)
            rc = load_facts(it, c, ms[c], rd, err);
    free(ms);
    if (rc != 0) run_items_free(it);
    return rc;
}

void run_items_free(RunItems *it) {
    for (int c = 0; it->cols && c < it->n_cols; c++) {
        ItemScores *s = &it->cols[c];
        for (int i = 0; i < s->n; i++) free(s->keys[i]);
        free(s->keys);
        free(s->values);
    }
    free(it->cols);
    memset(it, 0, sizeof *it);
}

const ItemScores *run_items_get(const RunItems *it, const MetricColumn *col) {
    int n_cols;
    const MetricColumn *cols = metric_all_columns(&n_cols);
    for (int c = 0; c < n_cols && c < it->n_cols; c++)
        if (!strcmp(cols[c].slug, col->slug)) return &it->cols[c];
    return NULL;
}

int item_scores_find(const ItemScores *s, const char *key) {
    int lo = 0, hi = s->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(s->keys[mid], key);
        if (c == 0) return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}
