/* benchmarks.h — multiple-choice benchmark data: ARC (AI2 Reasoning Challenge) and
 * TruthfulQA MC, loaded into one McDoc type (a question, its choices and which are right).
 *
 * Formats:
 *  - ARC JSONL, one question per line in AI2's original shape:
 *    {"id": str, "question": {"stem": str, "choices": [{"text": str, "label": str}, ...]},
 *     "answerKey": str}; other fields (a solver's scores, "support") are ignored. The gold
 *    choice is the one whose label equals answerKey (labels are A-E or 1-5).
 *  - TruthfulQA's mc_task.json: a JSON array of {"question": str, "mc1_targets": {answer: 0|1},
 *    "mc2_targets": {answer: 0|1}} whose keys are the answers, in file order. A repeated key
 *    keeps its first position and its last value, as Python's json (and so the Hugging Face
 *    dataset that lm-evaluation-harness reads) does.
 * Errors name the file, the line and the field ("arc.jsonl:17: question.choices[2].label: ..."). */
#ifndef CK_BENCHMARKS_H
#define CK_BENCHMARKS_H

#include <stddef.h>

#include "util/ck_error.h"

/* One multiple-choice question. */
typedef struct {
    char *id;       /* ARC id, or "tqa-N" (N = index in mc_task.json) */
    char *question; /* the stem, as in the file */
    int n_choices;
    char **choices; /* [n_choices] answer texts */
    int *labels;    /* [n_choices] 1 = a correct answer, 0 = not (ARC: exactly one 1) */
    int gold;       /* index of the (first) correct choice */
    int line;       /* line of the record in its file (1-based) */
} McDoc;

/* A file's questions, in file order. */
typedef struct {
    McDoc *docs;
    int n;
} McDocSet;

/* Which TruthfulQA target set to read. */
typedef enum { TQA_MC1 = 1, TQA_MC2 = 2 } TqaTargets;

/* Loads an ARC JSONL file (blank lines skipped) into set; refuses a malformed record with
 * path:line and the field. */
int benchmarks_load_arc(McDocSet *set, const char *path, CkError *err);

/* Parses ARC JSONL text (len bytes); `source` names it in messages. */
int benchmarks_parse_arc(McDocSet *set, const char *text, size_t len, const char *source,
                         CkError *err);

/* Loads TruthfulQA mc_task.json, taking the choices and labels of `which` target set (MC1
 * must have exactly one true answer, MC2 at least one); errors give path:line of the field. */
int benchmarks_load_truthfulqa(McDocSet *set, const char *path, TqaTargets which, CkError *err);

/* Parses mc_task.json text (NUL-terminated, len bytes); `source` names it in messages. */
int benchmarks_parse_truthfulqa(McDocSet *set, const char *text, size_t len, TqaTargets which,
                                const char *source, CkError *err);

/* Releases everything set owns and zeroes it; safe on a zeroed set. */
void benchmarks_free(McDocSet *set);

/* Finds a data file shipped in datasets/data/ and writes its path to out: $CUTKIT_DATA_DIR,
 * then datasets/data beside or above the running executable, then the source tree this was
 * built from. Fails with the places it looked. */
int benchmarks_data_path(const char *file, char *out, size_t cap, CkError *err);

#endif
