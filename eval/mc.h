/* mc.h — multiple-choice tasks as lm-evaluation-harness defines them: ARC-Challenge, ARC-Easy,
 * TruthfulQA MC1 and MC2, HellaSwag (and its llama.cpp-copy variant), MMLU (eval/mc_mmlu.h
 * builds its items and aggregates its subjects); prompts (few-shot included), per-item scoring
 * and metrics.
 *
 * The work splits into three pure steps, so that items can be scored anywhere (threads, MPI
 * ranks) and gathered: mc_build_items (docs -> prompts; the few-shot draw is sequential over
 * the docs, as the harness's, so every rank builds all items, which is cheap), mc_score_item
 * (model + item -> McItemResult, depending on nothing else), and mc_metrics (an array of item
 * results -> the task's metrics). */
#ifndef CK_MC_H
#define CK_MC_H

#include <stdint.h>

#include "datasets/benchmarks.h"
#include "eval/loglik.h"
#include "util/ck_error.h"
#include "util/strbuf.h"

typedef enum {
    MC_ARC_CHALLENGE,
    MC_ARC_EASY,
    MC_TRUTHFULQA_MC1,
    MC_TRUTHFULQA_MC2,
    MC_HELLASWAG,          /* the canonical hellaswag_val.jsonl */
    MC_HELLASWAG_LLAMACPP, /* llama.cpp's lossy copy: a variant, labelled so in the results */
    MC_MMLU,               /* the 57 subjects, reported per subject, category and in all */
    MC_TASK_COUNT
} McTaskId;

/* Where a task's docs come from and how its prompt is assembled. */
typedef enum {
    MC_KIND_ARC,        /* ARC JSONL (benchmarks.h) */
    MC_KIND_TRUTHFULQA, /* mc_task.json with the QA primer */
    MC_KIND_HELLASWAG,  /* datasets/hellaswag.h: query and endings */
    MC_KIND_MMLU        /* datasets/mmlu.h: a description per subject, dev exemplars */
} McTaskKind;

/* How a task's prompt is laid out, as the harness's task YAML says it: the one description
 * that mc_prompt_build follows and mc_prompt_hash fingerprints. */
typedef struct {
    const char *primer;            /* text before everything (TruthfulQA's QA primer), or NULL */
    const char *question;          /* doc_to_text, "{question}" standing for the question */
    const char *fewshot_delimiter; /* after each exemplar; NULL when the task takes none */
    const char *target_delimiter;  /* between a question and its answer (" ") */
} McPromptFormat;

typedef struct {
    McTaskId id;
    const char *name;       /* lm-eval's task name, e.g. "arc_challenge" */
    const char *test_file;  /* file name in datasets/data (or in a --data folder) */
    const char *train_file; /* few-shot exemplars (datasets/data), NULL: none */
    int is_truthfulqa;      /* 1: the QA primer, mc_task.json */
    McPromptFormat prompt;
    McTaskKind kind;
} McTask;

/* The task called name, or NULL. */
const McTask *mc_task_find(const char *name);

/* The task with that id. */
const McTask *mc_task_get(McTaskId id);

/* Parses a comma-separated list of task names into tasks[0..*n) (capacity cap; a repeated
 * name counts once, in the order first given). Fails with "unknown task 'x'" or "no task
 * given". */
int mc_tasks_parse(const char *list, const McTask **tasks, int cap, int *n, CkError *err);

/* The TruthfulQA 6-shot QA primer, verbatim (the prompt is primer + "\n\nQ: " + q + "\nA:"). */
extern const char MC_TRUTHFULQA_PRIMER[];

/* Appends to out the prompt of doc after the exemplars shots[0..n_shots): the task's primer,
 * each exemplar as its question in the question template + target delimiter + its gold answer
 * + few-shot delimiter, then doc's question in the template. The one place an MC prompt is
 * built: items are scored on it and --resume fingerprints it. Returns 0, or -1 when out of
 * memory. */
int mc_prompt_build(const McTask *task, const McDoc *doc, const McDoc *const *shots, int n_shots,
                    StrBuf *out);

/* FNV-1a 64 (util/hash.h) of the task's prompt format: each piece it has, with its NUL, in
 * the order primer, question template, few-shot delimiter, target delimiter. Written to
 * results.json as config.template_hash; it changes whenever the format mc_prompt_build follows
 * does. */
uint64_t mc_prompt_hash(const McTask *task);

/* One question ready to score. */
typedef struct {
    int doc_index;      /* position of the doc in its file (MMLU: in the list evaluated) */
    int group;          /* MMLU: the subject (datasets/mmlu.h); -1 elsewhere */
    const McTask *task; /* its task (the prompt format) */
    const McDoc *doc;   /* borrowed from the McDocSet */
    char *context;      /* the whole prompt: exemplars, then the question (owned) */
    int shots;          /* exemplars in the context */
} McItem;

/* Builds the items of the first `limit` docs (limit <= 0: all), their contexts by
 * mc_prompt_build. For ARC, shots > 0 draws that many exemplars per doc from train with
 * Python's random.Random(seed).sample over the train docs in file order, one draw per doc in
 * doc order, as the harness's few-shot sampler does (its default seed is 1234); each exemplar
 * is "Question: q\nAnswer: gold" and ends with "\n\n". TruthfulQA has the primer instead and
 * refuses shots > 0. */
int mc_build_items(const McTask *task, const McDocSet *test, const McDocSet *train, int shots,
                   uint64_t seed, int limit, McItem **items, int *n_items, CkError *err);

/* How the few-shot exemplars are drawn (for tasks with a train split: ARC, HellaSwag). */
typedef enum {
    /* harness 0.4.x ContextSampler: random.Random(seed), sample(train, k) per doc in doc order */
    MC_DRAW_V04,
    /* harness b281b09 (Open LLM Leaderboard v1): random.Random(42) shuffles the eval docs, then
     * draws sample(train, k) per doc in that shuffled order (the seed is not used) */
    MC_DRAW_B281B09
} McDraw;

typedef struct {
    int shots;
    uint64_t seed;
    int limit; /* first N docs (0: all) */
    McDraw draw;
    int fewshot_from_test; /* 1: no train split: exemplars from the evaluated docs, k + 1
                              drawn and the doc itself removed, as the harness does when the
                              few-shot split is the evaluation split */
} McBuildOptions;

/* mc_build_items with the draw of b (mc_build_items is MC_DRAW_V04 from train). */
int mc_build_items_ex(const McTask *task, const McDocSet *test, const McDocSet *train,
                      const McBuildOptions *b, McItem **items, int *n_items, CkError *err);

/* Releases items built by mc_build_items. */
void mc_items_free(McItem *items, int n_items);

/* The scores of one item's choices. */
typedef struct {
    int doc_index;
    int n_choices;
    int gold;
    int n_ctx_tokens;  /* context tokens (BOS included) */
    int *labels;       /* [n_choices] 1 = true answer */
    double *ll;        /* [n_choices] summed continuation log-probs */
    int *n_tokens;     /* [n_choices] continuation tokens */
    int *n_chars;      /* [n_choices] code points of the choice text (no leading space) */
    int *n_bytes;      /* [n_choices] UTF-8 bytes of the choice text */
    int *is_greedy;    /* [n_choices] */
    int *fallback;     /* [n_choices] 1: a token spanned the join */
    int *truncated;    /* [n_choices] tokens dropped on the left */
    int *cont_offsets; /* [n_choices + 1] into cont_tokens */
    int *cont_tokens;  /* the continuations' tokens, choice after choice */
} McItemResult;

/* Allocates r's arrays for n choices (zeroed). */
int mc_item_result_alloc(McItemResult *r, int n_choices, int n_cont_tokens, CkError *err);

/* Releases r's arrays; safe on a zeroed result. */
void mc_item_result_free(McItemResult *r);

/* Scores every choice of item (continuation: the target delimiter " " + choice) with the
 * harness's requests; with bos, the context starts with BOS. */
int mc_score_item(LoglikScorer *s, const Tokenizer *t, const McItem *item, int bos, McItemResult *r,
                  CkError *err);

/* Index of the first maximum of v[0..n) (strict >, so ties keep the first, like np.argmax). */
int mc_argmax(const double *v, int n);

/* Which answers MC2 counts as true: the harness's truthfulqa_mc2 changed its formula in 0.4.9
 * (tasks/truthfulqa/utils.py process_results_mc2, task version 2.0 -> 3.0). The two differ only
 * where a 1 label follows a 0 label (TruthfulQA questions #164 and #607). */
typedef enum {
    MC2_LABELS,            /* 3.0 (0.4.9 on): every choice whose label is 1 */
    MC2_BEFORE_FIRST_FALSE /* 2.0 (0.4.0 - 0.4.8): the choices before the first 0 label
                              (labels.index(0); all of them when there is no 0) */
} Mc2Variant;

/* MC2 (task version 3.0): the normalised probability mass on the true answers,
 * exp(ll_i - logsumexp(ll)) summed over labels == 1, in double. */
double mc_mc2(const double *ll, const int *labels, int n);

/* MC2 as variant v computes it: the normalised mass (stable, in double) on its true answers. */
double mc_mc2_variant(const double *ll, const int *labels, int n, Mc2Variant v);

/* Per-item scores: acc (argmax ll == gold), acc_norm (argmax ll / chars), acc_bytes
 * (argmax ll / bytes), acc_per_token (argmax ll / tokens), each 0 or 1, and mc2 (MC2_LABELS). */
typedef struct {
    double acc, acc_norm, acc_bytes, acc_per_token, mc2;
} McItemScores;

/* The per-item scores of r. */
void mc_item_scores(const McItemResult *r, McItemScores *out);

/* One reported metric: mean over items and its standard error sd_{n-1} / sqrt(n), NAN when
 * n < 2. */
typedef struct {
    const char *name; /* "acc", "acc_norm", "acc_bytes", "acc_per_token" */
    double value;
    double stderr_;
} McMetric;

#define MC_MAX_METRICS 4

typedef struct {
    int n; /* items */
    int n_metrics;
    McMetric m[MC_MAX_METRICS];
} McMetrics;

/* The task's metrics over results[0..n): ARC and HellaSwag report acc, acc_norm (the
 * harness's two), acc_bytes and acc_per_token (cutkit's); MC1 and MMLU acc alone, as the
 * harness; MC2 acc = the mean mass of variant mc2 (as the harness names it). */
void mc_metrics(const McTask *task, Mc2Variant mc2, const McItemResult *results, int n,
                McMetrics *out);

/* The metrics the harness itself reports for task (its YAML's metric_list): names[0..n), the
 * return value n (ARC, HellaSwag: acc, acc_norm; TruthfulQA, MMLU: acc). Each is a mean,
 * higher is better. */
int mc_harness_metrics(const McTask *task, const char *const **names);

/* The value the harness records for metric `name` of one item (its process_results): ARC's
 * and MC1's acc / acc_norm as 1.0 or 0.0, MC2's acc as the mass of variant mc2; NAN for a
 * metric the task has not. */
double mc_item_metric(const McTask *task, Mc2Variant mc2, const McItemResult *r, const char *name);

/* Mean and standard error of x[0..n) as the harness computes them (sample sd / sqrt(n)). */
void mc_mean_stderr(const double *x, int n, double *mean, double *stderr_);

#endif
