/* mmlu.h — MMLU (hendrycks/test): the 57 subjects with lm-evaluation-harness's categories, and
 * the dev / val / test CSV files read into items. Prompts are in mmlu_prompt.h; the formats and
 * the harness's rules are described in datasets/README.md. */
#ifndef CK_MMLU_H
#define CK_MMLU_H

#include <stddef.h>

#include "util/ck_error.h"

#define MMLU_N_SUBJECTS 57
#define MMLU_N_CHOICES  4

/* The harness's category groups (mmlu_stem, mmlu_other, mmlu_social_sciences,
 * mmlu_humanities), in the order its mmlu group lists them. */
typedef enum {
    MMLU_STEM,
    MMLU_OTHER,
    MMLU_SOCIAL_SCIENCES,
    MMLU_HUMANITIES,
    MMLU_N_CATEGORIES
} MmluCategory;

/* The three splits: dev (5 a subject, the few-shot exemplars), val (the harness's
 * "validation") and test (14,042 questions, the one evaluated). */
typedef enum { MMLU_DEV, MMLU_VAL, MMLU_TEST, MMLU_N_SPLITS } MmluSplit;

/* Subject s (0 <= s < MMLU_N_SUBJECTS, alphabetical as the harness orders them), e.g.
 * "abstract_algebra". */
const char *mmlu_subject_name(int s);

/* The category of subject s. */
MmluCategory mmlu_subject_category(int s);

/* The index of the subject called name, or -1. */
int mmlu_subject_find(const char *name);

/* The harness's group name of c without its "mmlu_" prefix: "stem", "other",
 * "social_sciences", "humanities". */
const char *mmlu_category_name(MmluCategory c);

/* The split's folder and file suffix: "dev", "val", "test". */
const char *mmlu_split_name(MmluSplit split);

/* One question. */
typedef struct {
    int subject;                   /* index into the subject table */
    char *question;                /* field 1, exactly as in the file */
    char *choices[MMLU_N_CHOICES]; /* fields 2-5 (A-D), exactly as in the file */
    int answer;                    /* field 6: A-D as 0-3 */
    int line;                      /* the line where the row starts in its file (1-based) */
} MmluItem;

/* One split of some subjects: each subject's rows in file order, subjects in the order they
 * were added (mmlu_load: the subject table's). */
typedef struct {
    MmluItem *items;
    int n;
    int cap;
    int first[MMLU_N_SUBJECTS]; /* subject s's rows are items[first[s] .. first[s] + count[s]) */
    int count[MMLU_N_SUBJECTS]; /* 0: not loaded */
    MmluSplit split;
} MmluSet;

/* Reads split of the subjects named in `subjects` (comma-separated; NULL or "" = all 57) from
 * dir/<split>/<subject>_<split>.csv, where dir is an MMLU data folder (it may also be the
 * folder holding it as data/, as in data.tar). Fails on an unknown subject name, a missing
 * file, or a bad row (see mmlu_parse_csv); set is then empty. The caller frees with
 * mmlu_free. */
int mmlu_load(MmluSet *set, const char *dir, MmluSplit split, const char *subjects, CkError *err);

/* Appends the rows of one subject's CSV text (len bytes) to set, which must be zeroed (or
 * hold other subjects of the same split). The CSV is read as Python's csv module reads it
 * (quoted fields with commas, doubled quotes and line breaks kept as they are; LF or CRLF
 * rows; blank lines skipped), and every row must have 6 fields, the last one A, B, C or D,
 * all valid UTF-8. Errors are "source:LINE: row R: field F (name): ..." with the line where
 * the row starts. On failure set is left as it was. */
int mmlu_parse_csv(MmluSet *set, int subject, const char *text, size_t len, const char *source,
                   CkError *err);

/* Releases everything set owns and zeroes it; safe on a zeroed set. */
void mmlu_free(MmluSet *set);

#endif
