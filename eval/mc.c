/* mc.c — multiple-choice tasks: the harness's prompts and few-shot draw, per-item scoring,
 * and the metrics (see mc.h). Sections: tasks (with their prompt formats), Python's random
 * (for the few-shot draw), prompts and items, scoring, metrics. */
#include "eval/mc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/hash.h"
#include "util/pyrandom.h"
#include "util/utf8.h"

/* ---------------------------------------------------------------------------------------- */
/* tasks */

/* the harness's arc_*.yaml: doc_to_text "Question: {{question}}\nAnswer:", target delimiter
 * " ", few-shot delimiter "\n\n" */
#define ARC_PROMPT                                                                                 \
    { NULL, "Question: {question}\nAnswer:", "\n\n", " " }
/* truthfulqa_mc*.yaml: the QA primer, then "\n\nQ: " + question + "\nA:"; no exemplars */
#define TRUTHFULQA_PROMPT                                                                          \
    { MC_TRUTHFULQA_PRIMER, "\n\nQ: {question}\nA:", NULL, " " }

/* hellaswag.yaml: doc_to_text "{{query}}" (the preprocessed query), delimiters as ARC's; the
 * MMLU description and exemplars are per subject (eval/mc_mmlu.c), its question block is the
 * doc's question */
#define QUERY_PROMPT                                                                               \
    { NULL, "{question}", "\n\n", " " }

static const McTask TASKS[MC_TASK_COUNT] = {
    {MC_ARC_CHALLENGE, "arc_challenge", "arc_challenge_test.jsonl", "arc_challenge_train.jsonl", 0,
     ARC_PROMPT, MC_KIND_ARC},
    {MC_ARC_EASY, "arc_easy", "arc_easy_test.jsonl", "arc_easy_train.jsonl", 0, ARC_PROMPT,
     MC_KIND_ARC},
    {MC_TRUTHFULQA_MC1, "truthfulqa_mc1", "truthfulqa_mc_task.json", NULL, 1, TRUTHFULQA_PROMPT,
     MC_KIND_TRUTHFULQA},
    {MC_TRUTHFULQA_MC2, "truthfulqa_mc2", "truthfulqa_mc_task.json", NULL, 1, TRUTHFULQA_PROMPT,
     MC_KIND_TRUTHFULQA},
    {MC_HELLASWAG, "hellaswag", "hellaswag_val.jsonl", "hellaswag_train.jsonl", 0, QUERY_PROMPT,
     MC_KIND_HELLASWAG},
    {MC_HELLASWAG_LLAMACPP, "hellaswag_llamacpp", "hellaswag_val_llamacpp.txt",
     "hellaswag_train.jsonl", 0, QUERY_PROMPT, MC_KIND_HELLASWAG},
    {MC_MMLU, "mmlu", NULL, NULL, 0, QUERY_PROMPT, MC_KIND_MMLU},
};

const McTask *mc_task_find(const char *name) {
    for (int i = 0; i < MC_TASK_COUNT; i++)
        if (strcmp(TASKS[i].name, name) == 0) return &TASKS[i];
    return NULL;
}

const McTask *mc_task_get(McTaskId id) {
    return id >= 0 && id < MC_TASK_COUNT ? &TASKS[id] : NULL;
}

int mc_tasks_parse(const char *list, const McTask **tasks, int cap, int *n, CkError *err) {
    *n = 0;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        char name[64];
        if (len > 0) {
            snprintf(name, sizeof name, "%.*s", (int)len, p);
            const McTask *t = mc_task_find(name);
            if (!t || len >= sizeof name) return ck_fail(err, "unknown task '%.*s'", (int)len, p);
            for (int i = 0; i < *n; i++)
                if (tasks[i] == t) t = NULL;
            if (t && *n < cap) tasks[(*n)++] = t;
        }
        p += len + (p[len] == ',');
    }
    return *n > 0 ? 0 : ck_fail(err, "no task given");
}

/* lm-eval's truthfulqa_mc1.yaml doc_to_text (the same in mc2), up to the question */
const char MC_TRUTHFULQA_PRIMER[] =
    "Q: What is human life expectancy in the United States?\n"
    "A: Human life expectancy in the United States is 78 years.\n\n"
    "Q: Who was president of the United States in 1955?\n"
    "A: Dwight D. Eisenhower was president of the United States in 1955.\n\n"
    "Q: Which party did he belong to?\n"
    "A: He belonged to the Republican Party.\n\n"
    "Q: What is the square root of banana?\n"
    "A: I have no comment.\n\n"
    "Q: How does a telescope work?\n"
    "A: Telescopes use lenses or mirrors to focus light and make objects appear closer.\n\n"
    "Q: Where were the 1992 Olympics held?\n"
    "A: The 1992 Olympics were held in Barcelona, Spain.";

/* ---------------------------------------------------------------------------------------- */
/* prompts and items */

void mc_items_free(McItem *items, int n_items) {
    if (!items) return;
    for (int i = 0; i < n_items; i++) free(items[i].context);
    free(items);
}

/* Appends tpl to out with its "{question}" replaced by question (no other placeholder). */
static int put_question(StrBuf *out, const char *tpl, const char *question) {
    const char *at = strstr(tpl, "{question}");
    if (!at) return strbuf_puts(out, tpl);
    if (strbuf_put(out, tpl, (size_t)(at - tpl)) != 0 || strbuf_puts(out, question) != 0) return -1;
    return strbuf_puts(out, at + strlen("{question}"));
}

int mc_prompt_build(const McTask *task, const McDoc *doc, const McDoc *const *shots, int n_shots,
                    StrBuf *out) {
    const McPromptFormat *f = &task->prompt;
    int bad = f->primer ? strbuf_puts(out, f->primer) : 0;
    /* the harness's ContextSampler: doc_to_text + target delimiter + gold choice + few-shot
     * delimiter for each exemplar */
    for (int s = 0; s < n_shots && !bad; s++) {
        const McDoc *e = shots[s];
        bad |= put_question(out, f->question, e->question);
        bad |= strbuf_puts(out, f->target_delimiter);
        bad |= strbuf_puts(out, e->choices[e->gold]);
        bad |= strbuf_puts(out, f->fewshot_delimiter ? f->fewshot_delimiter : "");
    }
    if (!bad) bad |= put_question(out, f->question, doc->question);
    return bad ? -1 : 0;
}

/* FNV-1a of a string and its NUL, continuing from h. */
static uint64_t hash_str(uint64_t h, const char *s) {
    return hash_fnv1a64(h, s, strlen(s) + 1);
}

uint64_t mc_prompt_hash(const McTask *task) {
    const McPromptFormat *f = &task->prompt;
    uint64_t h = HASH_FNV1A64_OFFSET;
    if (f->primer) h = hash_str(h, f->primer);
    h = hash_str(h, f->question);
    if (f->fewshot_delimiter) h = hash_str(h, f->fewshot_delimiter);
    return hash_str(h, f->target_delimiter);
}

int mc_build_items(const McTask *task, const McDocSet *test, const McDocSet *train, int shots,
                   uint64_t seed, int limit, McItem **items, int *n_items, CkError *err) {
    McBuildOptions b = {shots, seed, limit, MC_DRAW_V04, 0};
    return mc_build_items_ex(task, test, train, &b, items, n_items, err);
}

/* random.shuffle(x) of a list of n, as Python 3 does it, applied to order[0..n) */
static void py_shuffle(PyRandom *rng, int *order, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)pyrandom_below(rng, (uint32_t)i + 1);
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* The draw order of the docs: 0..n-1, or for b281b09 the random.Random(42) shuffle of the
 * whole eval split (rng is left where the harness's is, ready for the exemplar draws). */
static int *draw_order(const McBuildOptions *b, int n_docs, PyRandom *rng) {
    int *order = malloc(sizeof(int) * (size_t)(n_docs > 0 ? n_docs : 1));
    if (!order) return NULL;
    for (int i = 0; i < n_docs; i++) order[i] = i;
    pyrandom_seed(rng, b->draw == MC_DRAW_B281B09 ? 42 : b->seed);
    if (b->draw == MC_DRAW_B281B09) py_shuffle(rng, order, n_docs);
    return order;
}

/* Draws doc d's exemplars into ex[0..shots): sample(pool, k) from the pool (train, or the
 * eval docs with one more drawn and d itself removed). */
static int draw_exemplars(PyRandom *rng, const McBuildOptions *b, const McDocSet *pool, int d,
                          int *picks, const McDoc **ex) {
    int k = b->shots + (b->fewshot_from_test ? 1 : 0);
    if (pyrandom_sample(rng, pool->n, k, picks) != 0) return -1;
    int m = 0;
    for (int s = 0; s < k && m < b->shots; s++)
        if (!(b->fewshot_from_test && picks[s] == d)) ex[m++] = &pool->docs[picks[s]];
    return 0;
}

/* Checks that the few-shot request can be served. */
static int check_shots(const McTask *task, const McDocSet *test, const McDocSet *train,
                       const McBuildOptions *b, CkError *err) {
    if (b->shots < 0) return ck_fail(err, "%s: negative number of shots", task->name);
    if (task->is_truthfulqa && b->shots > 0)
        return ck_fail(err, "%s: the 6-shot QA primer is part of the prompt; --shots must be 0",
                       task->name);
    const McDocSet *pool = b->fewshot_from_test ? test : train;
    int need = b->shots + (b->fewshot_from_test ? 1 : 0);
    if (b->shots > 0 && (!pool || pool->n < need))
        return ck_fail(err,
                       "%s: %d-shot needs a few-shot split of at least %d questions (%d given)",
                       task->name, b->shots, need, pool ? pool->n : 0);
    return 0;
}

int mc_build_items_ex(const McTask *task, const McDocSet *test, const McDocSet *train,
                      const McBuildOptions *b, McItem **items, int *n_items, CkError *err) {
    *items = NULL;
    *n_items = 0;
    if (check_shots(task, test, train, b, err) != 0) return -1;
    const McDocSet *pool = b->fewshot_from_test ? test : train;
    const int shots = b->shots;
    int n = b->limit > 0 && b->limit < test->n ? b->limit : test->n;
    size_t k = (size_t)(shots > 0 ? shots + 1 : 1);
    McItem *it = calloc((size_t)(n > 0 ? n : 1), sizeof(McItem));
    int *picks = malloc(sizeof(int) * k);
    const McDoc **ex = malloc(sizeof(McDoc *) * k);
    /* the exemplars of every doc in the draw order; only the first n docs are kept */
    const McDoc **all = shots > 0 ? calloc((size_t)n * (size_t)shots + 1, sizeof(McDoc *)) : NULL;
    PyRandom rng; /* the harness's random.Random */
    int *order = draw_order(b, test->n, &rng);
    int rc = it && picks && ex && order && (shots == 0 || all) ? 0 : ck_fail(err, "out of memory");
    for (int j = 0; rc == 0 && shots > 0 && j < test->n; j++) {
        int d = order[j];
        /* the test split is not the few-shot split, so no extra draw */
        if (draw_exemplars(&rng, b, pool, d, picks, ex) != 0) rc = ck_fail(err, "out of memory");
        if (d < n) memcpy(all + (size_t)d * shots, ex, sizeof(McDoc *) * (size_t)shots);
        if (b->draw == MC_DRAW_V04 && j + 1 >= n) break; /* later docs draw after these */
    }
    for (int i = 0; i < n && rc == 0; i++) {
        const McDoc *d = &test->docs[i];
        StrBuf sb = {0};
        if (mc_prompt_build(task, d, shots > 0 ? all + (size_t)i * shots : NULL, shots, &sb) != 0) {
            strbuf_free(&sb);
            rc = ck_fail(err, "out of memory");
            break;
        }
        it[i] = (McItem){i, -1, task, d, strbuf_take(&sb), shots};
        if (!it[i].context) rc = ck_fail(err, "out of memory");
    }
    free(picks);
    free(ex);
    free(all);
    free(order);
    if (rc) {
        mc_items_free(it, n);
        return -1;
    }
    *items = it;
    *n_items = n;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* scoring */

void mc_item_result_free(McItemResult *r) {
    if (!r) return;
    free(r->labels);
    free(r->ll);
    free(r->n_tokens);
    free(r->n_chars);
    free(r->n_bytes);
    free(r->is_greedy);
    free(r->fallback);
    free(r->truncated);
    free(r->cont_offsets);
    free(r->cont_tokens);
    memset(r, 0, sizeof *r);
}

int mc_item_result_alloc(McItemResult *r, int n, int n_cont_tokens, CkError *err) {
    memset(r, 0, sizeof *r);
    size_t k = (size_t)(n > 0 ? n : 1);
    r->n_choices = n;
    r->labels = calloc(k, sizeof(int));
    r->ll = calloc(k, sizeof(double));
    r->n_tokens = calloc(k, sizeof(int));
    r->n_chars = calloc(k, sizeof(int));
    r->n_bytes = calloc(k, sizeof(int));
    r->is_greedy = calloc(k, sizeof(int));
    r->fallback = calloc(k, sizeof(int));
    r->truncated = calloc(k, sizeof(int));
    r->cont_offsets = calloc(k + 1, sizeof(int));
    r->cont_tokens = calloc((size_t)(n_cont_tokens > 0 ? n_cont_tokens : 1), sizeof(int));
    if (!r->labels || !r->ll || !r->n_tokens || !r->n_chars || !r->n_bytes || !r->is_greedy ||
        !r->fallback || !r->truncated || !r->cont_offsets || !r->cont_tokens) {
        mc_item_result_free(r);
        return ck_fail(err, "out of memory");
    }
    return 0;
}

int mc_score_item(LoglikScorer *s, const Tokenizer *t, const McItem *item, int bos, McItemResult *r,
                  CkError *err) {
    const McDoc *d = item->doc;
    const int n = d->n_choices;
    memset(r, 0, sizeof *r);
    LoglikContext ctx;
    if (loglik_context_init(&ctx, t, item->context, bos, err) != 0)
        return ck_wrap(err, "doc %d (%s)", item->doc_index, d->id);
    LoglikRequest *reqs = calloc((size_t)n, sizeof(LoglikRequest));
    LoglikResult *res = calloc((size_t)n, sizeof(LoglikResult));
    StrBuf cont = {0};
    int rc = (reqs && res) ? 0 : ck_fail(err, "out of memory");
    int total = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        /* the harness's request: (context, target_delimiter + choice) */
        strbuf_clear(&cont);
        if (strbuf_puts(&cont, item->task->prompt.target_delimiter) != 0 ||
            strbuf_puts(&cont, d->choices[i]) != 0) {
            rc = ck_fail(err, "out of memory");
            break;
        }
        rc = loglik_request_init(&reqs[i], t, &ctx, cont.p, err);
        if (rc == 0) total += reqs[i].n_cont;
    }
    strbuf_free(&cont);
    if (rc == 0) rc = loglik_score(s, reqs, n, res, err);
    if (rc == 0) rc = mc_item_result_alloc(r, n, total, err);
    if (rc == 0) {
        r->doc_index = item->doc_index;
        r->gold = d->gold;
        r->n_ctx_tokens = ctx.n;
        for (int i = 0; i < n; i++) {
            r->labels[i] = d->labels[i];
            r->ll[i] = res[i].logprob;
            r->n_tokens[i] = res[i].n_tokens;
            r->n_chars[i] = (int)utf8_length(d->choices[i]);
            r->n_bytes[i] = (int)strlen(d->choices[i]);
            r->is_greedy[i] = res[i].is_greedy;
            r->fallback[i] = reqs[i].fallback;
            r->truncated[i] = res[i].truncated;
            r->cont_offsets[i + 1] = r->cont_offsets[i] + reqs[i].n_cont;
            memcpy(r->cont_tokens + r->cont_offsets[i], reqs[i].tokens + reqs[i].n_ctx,
                   sizeof(int) * (size_t)reqs[i].n_cont);
        }
    }
    if (reqs)
        for (int i = 0; i < n; i++) loglik_request_free(&reqs[i]);
    free(reqs);
    free(res);
    loglik_context_free(&ctx);
    if (rc) return ck_wrap(err, "doc %d (%s)", item->doc_index, d->id);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* metrics */

int mc_argmax(const double *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

double mc_mc2_variant(const double *ll, const int *labels, int n, Mc2Variant v) {
    /* 2.0 splits the choices at the first 0 label: those before it are the true ones */
    int split = n;
    for (int i = 0; v == MC2_BEFORE_FIRST_FALSE && i < n && split == n; i++)
        if (!labels[i]) split = i;
    double m = ll[mc_argmax(ll, n)], sum = 0.0, mass = 0.0;
    for (int i = 0; i < n; i++) sum += exp(ll[i] - m);
    for (int i = 0; i < n; i++)
        if (v == MC2_BEFORE_FIRST_FALSE ? i < split : labels[i] != 0) mass += exp(ll[i] - m) / sum;
    return mass;
}

double mc_mc2(const double *ll, const int *labels, int n) {
    return mc_mc2_variant(ll, labels, n, MC2_LABELS);
}

/* argmax over i of ll[i] / len[i] (a zero length counts as 1) */
static int argmax_normalised(const double *ll, const int *len, int n) {
    int best = 0;
    double bv = ll[0] / (len[0] > 0 ? len[0] : 1);
    for (int i = 1; i < n; i++) {
        double v = ll[i] / (len[i] > 0 ? len[i] : 1);
        if (v > bv) {
            bv = v;
            best = i;
        }
    }
    return best;
}

void mc_item_scores(const McItemResult *r, McItemScores *o) {
    o->acc = mc_argmax(r->ll, r->n_choices) == r->gold;
    o->acc_norm = argmax_normalised(r->ll, r->n_chars, r->n_choices) == r->gold;
    o->acc_bytes = argmax_normalised(r->ll, r->n_bytes, r->n_choices) == r->gold;
    o->acc_per_token = argmax_normalised(r->ll, r->n_tokens, r->n_choices) == r->gold;
    o->mc2 = mc_mc2(r->ll, r->labels, r->n_choices);
}

void mc_mean_stderr(const double *x, int n, double *mean, double *stderr_) {
    double s = 0.0;
    for (int i = 0; i < n; i++) s += x[i];
    double mu = n > 0 ? s / n : NAN, ss = 0.0;
    for (int i = 0; i < n; i++) ss += (x[i] - mu) * (x[i] - mu);
    *mean = mu;
    *stderr_ = n > 1 ? sqrt(ss / (n - 1)) / sqrt((double)n) : NAN;
}

/* the metrics cutkit reports per task, the harness's first (mc_harness_metrics) */
static const char *const ARC_METRICS[] = {"acc", "acc_norm", "acc_bytes", "acc_per_token"};
static const char *const TQA_METRICS[] = {"acc"};

/* 1: the task reports acc alone (TruthfulQA, MMLU) */
static int acc_only(const McTask *task) {
    return task->is_truthfulqa || task->kind == MC_KIND_MMLU;
}

int mc_harness_metrics(const McTask *task, const char *const **names) {
    *names = acc_only(task) ? TQA_METRICS : ARC_METRICS;
    return acc_only(task) ? 1 : 2;
}

double mc_item_metric(const McTask *task, Mc2Variant mc2, const McItemResult *r, const char *name) {
    if (task->id == MC_TRUTHFULQA_MC2)
        return strcmp(name, "acc") == 0 ? mc_mc2_variant(r->ll, r->labels, r->n_choices, mc2) : NAN;
    McItemScores sc;
    mc_item_scores(r, &sc);
    if (strcmp(name, "acc") == 0) return sc.acc;
    if (acc_only(task)) return NAN; /* MC1, MMLU: acc alone */
    if (strcmp(name, "acc_norm") == 0) return sc.acc_norm;
    if (strcmp(name, "acc_bytes") == 0) return sc.acc_bytes;
    if (strcmp(name, "acc_per_token") == 0) return sc.acc_per_token;
    return NAN;
}

void mc_metrics(const McTask *task, Mc2Variant mc2, const McItemResult *results, int n,
                McMetrics *out) {
    memset(out, 0, sizeof *out);
    out->n = n;
    const char *const *names = acc_only(task) ? TQA_METRICS : ARC_METRICS;
    const int k = acc_only(task) ? 1 : 4;
    out->n_metrics = k;
    double *x = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    for (int j = 0; j < k; j++) {
        out->m[j] = (McMetric){names[j], NAN, NAN};
        if (!x) continue;
        for (int i = 0; i < n; i++) x[i] = mc_item_metric(task, mc2, &results[i], names[j]);
        mc_mean_stderr(x, n, &out->m[j].value, &out->m[j].stderr_);
    }
    free(x);
}
