/* judge.h — pairwise judges and the AlpacaEval protocol around them.
 *
 * A Judge is a function pointer with its context: given an instruction and two outputs in
 * the order shown, it returns a preference in [1, 2] (1: the first output is better, 2: the
 * second, 1.5: a draw; continuous values for weighted judges) and its raw verdict. Three
 * kinds exist: a local model scored by the log-probabilities of two verdicts
 * (judge_model.c), an external command (judge_command.c), and the rule-based judge of the
 * synthetic world (judge_synth.c).
 *
 * judge_annotate adds AlpacaEval's protocol: identical outputs are a draw without asking
 * the judge; the order shown is switched for a pseudo-random half of the instructions
 * (judge_is_switched: a stable hash of the instruction and a seed) and the preference of a
 * switched pair is flipped back (3 - p); optionally both orders are judged and averaged. A
 * failed judgment leaves the preference NaN (null in the file) with the reason, never a
 * verdict. */
#ifndef CK_JUDGE_H
#define CK_JUDGE_H

#include <stdint.h>

#include "eval/annotations.h"
#include "eval/judge_template.h"
#include "util/ck_error.h"
#include "model/lora.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

typedef struct Judge {
    char name[128]; /* written as the annotator */
    /* Judges output_1 against output_2 as given: 0 with *preference in [1, 2] and *raw a
     * malloc'd JSON text of the raw verdict (or NULL); -1 with err on failure. */
    int (*judge)(void *ctx, const char *instruction, const char *output_1, const char *output_2,
                 double *preference, char **raw, CkError *err);
    void (*close)(void *ctx); /* releases ctx (may be NULL) */
    void *ctx;
} Judge;

typedef struct {
    uint64_t seed;   /* of the order switch */
    int randomize;   /* 1: switch the order of a pseudo-random half (AlpacaEval's default) */
    int both_orders; /* 1: judge both orders and average the two preferences */
} JudgeOptions;

/* Whether the pair of this instruction is shown switched under seed: the low bit of
 * splitmix64(FNV-1a-64("is_switched_outputs" + instruction) ^ splitmix64(seed)). Stable across
 * runs and machines, but not the same choice as AlpacaEval's Python random.Random. */
int judge_is_switched(const char *instruction, uint64_t seed);

/* Judges a->output_1 (baseline) against a->output_2 (model) for a->instruction and fills
 * a->preference (in the file's orientation), is_switched, raw_completion, annotator and
 * error. Returns 0 whether the judgment succeeded or was recorded as missing; -1 only when out
 * of memory. */
int judge_annotate(const Judge *j, const JudgeOptions *opt, Annotation *a, CkError *err);

/* Releases the judge's context; safe on a zeroed Judge. */
void judge_close(Judge *j);

/* ---- pairwise templates (judge_template.c) ---------------------------------------------- */

/* A pairwise prompt with {instruction}, {output_1} and {output_2} in cutkit's syntax ("{{",
 * "}}" for braces) or AlpacaEval's (eval/judge_template.h), how its chat markers are rendered,
 * and the two verdict strings whose log-probabilities after it are compared: verdict_1 means
 * the first output is better. */
typedef struct {
    char *prompt, *verdict_1, *verdict_2;
    JudgeSyntax syntax;
    JudgeChat chat;
    char *source; /* the prompt's file (or the template's name), for messages */
} PairwiseTemplate;

/* The built-in pairwise template, identical to the shipped eval/templates/pairwise_ab.json. */
extern const char PAIRWISE_TEMPLATE_DEFAULT_JSON[];

/* Parses a pairwise template JSON object; source names it in messages. Fields: "verdict_1",
 * "verdict_2", and "prompt" (cutkit's placeholders) or "prompt_file" (a prompt file such as
 * AlpacaEval's annotator prompts, read as they are, AlpacaEval's placeholders; relative to
 * the working directory here, to the template's folder in pairwise_template_load);
 * optionally "placeholders" ("cutkit" or "alpaca_eval") and "chat" ("raw", the default,
 * "plain", "chatml" or "llama2"); other fields ignored. The prompt is checked to fill and
 * render: an unknown placeholder fails naming the file and the placeholder. */
int pairwise_template_parse(PairwiseTemplate *t, const char *json_text, const char *source,
                            CkError *err);

/* Reads a pairwise template file (see pairwise_template_parse); NULL path: the built-in. */
int pairwise_template_load(PairwiseTemplate *t, const char *path, CkError *err);

/* Releases t and zeroes it. */
void pairwise_template_free(PairwiseTemplate *t);

/* Fills the placeholders of a prompt in cutkit's syntax (values inserted verbatim, never
 * re-scanned); returns a malloc'd string, or NULL with err on an unknown placeholder or a lone
 * brace. */
char *pairwise_template_format(const char *fmt, const char *instruction, const char *output_1,
                               const char *output_2, CkError *err);

/* The judge model's text for one pair: t's prompt filled in its syntax, then rendered in its
 * chat form. Returns a malloc'd string, or NULL with err. */
char *pairwise_template_render(const PairwiseTemplate *t, const char *instruction,
                               const char *output_1, const char *output_2, CkError *err);

/* ---- the local model judge (judge_model.c) ----------------------------------------------- */

/* A judge that scores prompt + verdict_1 and prompt + verdict_2 under model m (with lora,
 * NULL: none) and returns 2 - softmax([L_1, L_2])[0], where L_k is the log-probability of the
 * tokens in which the two token sequences differ (the shared prefix cancels). For verdicts
 * that differ in one token this is 2 - softmax([z_1, z_2])[0] of that token's logits, as
 * research/eval-formulas.md B2 gives it. The raw verdict holds L_1, L_2 and the verdicts.
 * m, tok, lora and t must outlive the judge. */
int judge_model_create(Judge *j, const Model *m, const Tokenizer *tok, const LoraAdapters *lora,
                       const PairwiseTemplate *t, const char *name, CkError *err);

/* ---- the external command judge (judge_command.c) ---------------------------------------- */

/* A judge that runs `command` through /bin/sh -c (subprocess.h) once per pair, with one JSON
 * object {"instruction", "output_1", "output_2"} and a newline on stdin, and reads its
 * stdout: a number in [1, 2] (e.g. "2" or "1.37"), or a JSON object with a "preference"
 * number. Anything else, a non-zero exit or a timeout (seconds, <= 0: none) is a failure
 * whose message quotes what it printed. */
int judge_command_create(Judge *j, const char *command, double timeout_seconds, const char *name,
                         CkError *err);

/* ---- the synthetic world's rule-based judge (judge_synth.c) ------------------------------ */

/* A judge that counts errors in each output with synth_count_errors (datasets/synth.h):
 * fewer errors wins (1 or 2), equal counts are a draw (1.5). Fails with "the
 * synthetic-world judge is not built" when synth.h was absent at build time. */
int judge_synth_create(Judge *j, CkError *err);

#endif
