/* mmlu_prompt.h — MMLU prompts as lm-evaluation-harness builds them, in each of its template
 * eras: the context string of an item after its exemplars, and the continuations scored
 * against it. datasets/README.md gives the exact strings and where each era comes from. */
#ifndef CK_MMLU_PROMPT_H
#define CK_MMLU_PROMPT_H

#include "datasets/benchmarks.h"
#include "datasets/mmlu.h"
#include "util/ck_error.h"
#include "util/strbuf.h"

/* The harness's MMLU templates. CURRENT and LEADERBOARD give the same bytes (a test checks
 * it); they are kept apart because the two eras aggregate differently (the leaderboard
 * averaged the 57 subjects, the current mmlu group weights them by size). */
typedef enum {
    MMLU_PROMPT_CURRENT,     /* harness 0.4.0-0.4.1 and 0.4.4 on: task mmlu_<subject> */
    MMLU_PROMPT_LEADERBOARD, /* harness b281b09 (Open LLM Leaderboard v1): hendrycksTest v1 */
    MMLU_PROMPT_HARNESS_042, /* harness 0.4.2-0.4.3: one "\n" after the description */
    MMLU_PROMPT_LEGACY,      /* harness <= 0.3.0: hendrycksTest v0, "Question: ... Choices:" */
    MMLU_N_PROMPTS
} MmluPrompt;

/* The template's name: "current", "leaderboard", "harness-0.4.2", "legacy". */
const char *mmlu_prompt_name(MmluPrompt p);

/* The template called name; fails listing the names. */
int mmlu_prompt_from_name(const char *name, MmluPrompt *p, CkError *err);

/* Appends the text before the exemplars for subject s: "The following are multiple choice
 * questions (with answers) about abstract algebra." then "\n\n" ("\n" in HARNESS_042; nothing
 * at all in LEGACY). Returns 0, or -1 when out of memory. */
int mmlu_description(MmluPrompt p, int subject, StrBuf *out);

/* Appends the item's question block (the harness's doc_to_text): the question stripped as
 * Python strips it, "\nA. " choice A ... "\nD. " choice D, "\nAnswer:"; LEGACY: "Question: "
 * + the question as it is + "\nChoices:\nA. " ... "\nAnswer:". Returns 0 or -1. */
int mmlu_query(MmluPrompt p, const MmluItem *item, StrBuf *out);

/* The text of choice c (0-3) that follows the target delimiter " ": the letter "A"-"D", or in
 * LEGACY the choice's own text. acc_norm divides by this text's length. */
const char *mmlu_choice(MmluPrompt p, const MmluItem *item, int c);

/* Appends the whole context of item after the exemplars shots[0..n_shots): the description,
 * then each exemplar's query + " " + its answer's mmlu_choice + "\n\n", then item's query.
 * Returns 0, or -1 when out of memory. */
int mmlu_context(MmluPrompt p, const MmluItem *item, const MmluItem *const *shots, int n_shots,
                 StrBuf *out);

/* Appends the continuation of choice c: " " + mmlu_choice. Returns 0 or -1. */
int mmlu_continuation(MmluPrompt p, const MmluItem *item, int c, StrBuf *out);

/* The harness's exemplars for the current, leaderboard and 0.4.2 templates (its first_n
 * sampler): the first k rows of the subject in dev, in file order, into shots[0..k). Fails
 * when dev holds fewer. (LEGACY drew k random val rows instead; see datasets/README.md.) */
int mmlu_exemplars(const MmluSet *dev, int subject, int k, const MmluItem **shots, CkError *err);

/* Converts set's items into McDocs for eval/mc.h: question = mmlu_query, choices =
 * mmlu_choice, gold = the answer, id = "<subject>/<index in the subject>", line = the row's.
 * The description is not in the docs (it is per subject: mmlu_description). The caller frees
 * out with benchmarks_free. */
int mmlu_to_mc_docs(const MmluSet *set, MmluPrompt p, McDocSet *out, CkError *err);

#endif
