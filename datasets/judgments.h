/* judgments.h — judgment data for CUT: loaders of three file formats into one record type,
 * and the construction of the reference's training sequences (cut-spec §1.3-1.4).
 *
 * Formats:
 *  - JUDGMENTS_CUT_JSON: a JSON array of {"instruction": str, "input": str|null (optional),
 *    "output": str, "judgment": str|null, "score": number (optional)}, as the reference
 *    trainer reads (e.g. CUT's data/iter/train-alpaca-sample-iter*.json). Other fields
 *    ("id", "i_ans", ...) are ignored.
 *  - JUDGMENTS_SHEPHERD: Shepherd's human_data_for_model.jsonl, one {"question", "answer",
 *    "feedback"} object per line, converted as the reference converter does: instruction =
 *    question, output = answer (kept with its trailing "\n\n"), judgment = feedback,
 *    score = 1 (so every record is negative).
 *  - JUDGMENTS_JSONL: cutkit's generic JSONL, one object per line with the CUT JSON fields:
 *    "instruction" (str), "input" (str or null, optional), "output" (str), "judgment"
 *    (str, or null for a positive record), "score" (number, optional).
 * In every format a score >= 7 makes the record positive (its judgment is dropped), and the
 * judgment "$ERROR$" (failed judge calls in CUT's iteration files) is counted and dropped
 * unless keep_error is set (the reference trains on it as a negative). */
#ifndef CK_JUDGMENTS_H
#define CK_JUDGMENTS_H

#include <stdint.h>

#include "util/ck_error.h"
#include "datasets/templates.h"
#include "tokenizer/tokenizer.h"

typedef enum {
    JUDGMENTS_CUT_JSON = 1,
    JUDGMENTS_SHEPHERD = 2,
    JUDGMENTS_JSONL = 3,
} JudgmentFormat;

typedef struct {
    char *instruction;
    char *input; /* NULL when absent or null */
    char *output;
    char *judgment; /* NULL = positive record */
    int has_score;
    double score;
    int source_index; /* 0-based record index in the file (JSON array index or line index) */
} JudgmentRecord;

typedef struct {
    int skip_bad;   /* skip (and count) malformed records instead of failing */
    int keep_error; /* keep "$ERROR$" judgments as negatives, as the reference does */
} JudgmentLoadOptions;

typedef struct {
    JudgmentRecord *records;
    int n;          /* records kept */
    int n_read;     /* well-formed records in the file */
    int n_positive; /* of n_read: judgment null (or score >= 7) */
    int n_negative; /* of n_read: any other judgment, "$ERROR$" included */
    int n_error;    /* of n_negative: judgment "$ERROR$" */
    int n_skipped;  /* malformed records skipped under skip_bad */
} JudgmentSet;

/* Loads the file at path in format fmt into s (opt NULL = defaults: fail on a malformed
 * record, drop "$ERROR$"). A malformed record is reported as "path:LINE: ..." (JSONL) or
 * "path: record INDEX: ..." (CUT JSON) naming the field. */
int judgments_load(JudgmentSet *s, const char *path, JudgmentFormat fmt,
                   const JudgmentLoadOptions *opt, CkError *err);

/* Releases the records of s and zeroes it; safe on a zeroed set. */
void judgments_free(JudgmentSet *s);

/* The format called name ("cut", "shepherd", "jsonl"), or for "auto" the one path's
 * extension implies (".jsonl": JUDGMENTS_JSONL, else JUDGMENTS_CUT_JSON); 0 for any other
 * name. */
JudgmentFormat judgments_format_from_name(const char *name, const char *path);

/* The name of fmt as judgments_format_from_name takes it ("" for an unknown value). */
const char *judgments_format_name(JudgmentFormat fmt);

/* One tokenized training sequence: tokens[0..n) with trained[i] = 1 where the reference
 * keeps label i (the response and its EOS), 0 where it is -100. */
typedef struct {
    int *tokens;
    unsigned char *trained;
    int n;
    int prompt_len; /* masked leading tokens after truncation; <= 0 means none masked */
} CutSequence;

/* The training item of one record: for a negative record a = Align-N (judge template) and
 * m = Misalign (plain template), whose response tokens are identical and index-aligned at
 * the ends; for a positive record a = Align-P and m is empty (n = 0). */
typedef struct {
    int negative;
    CutSequence a, m;
    int n_response; /* trained tokens in a (and in m for a negative record) */
} CutExample;

/* Builds the item of record r as the reference does: the template filled with the
 * instruction (input joined by "\n") and judgment, the response appended with no separator,
 * the whole tokenized jointly with BOS and EOS, the prompt length from tokenizing the filled
 * template alone (BOS, no EOS), then the last cutoff tokens kept (cutoff <= 0: no limit)
 * with the prompt length reduced by the tokens cut from the full sequence beyond those cut
 * from the prompt. Fails when Align-N and Misalign disagree on the response tokens. */
int judgments_build_example(const Template *tpl, const JudgmentRecord *r, const Tokenizer *t,
                            int cutoff, CutExample *ex, CkError *err);

/* Releases the arrays of ex and zeroes it. */
void judgments_example_free(CutExample *ex);

/* Chooses which records of s to train on under Align-P downsampling (cut-spec §5.1):
 * every negative is kept, and when int(ratio * negatives) < positives only that many
 * positives are kept, chosen uniformly with an Rng seeded by seed; ratio < 0 keeps all.
 * keep[i] (n entries, caller-allocated) gets 1 for a kept record; returns the count kept,
 * or -1 when out of memory. */
int judgments_downsample(const JudgmentSet *s, double ratio, uint64_t seed, unsigned char *keep);

#endif
