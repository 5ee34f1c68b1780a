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
    int prompt_len; /* masked leading tokens after truncation; <= 0 means none masked (< 0:
                       the cutoff cut -prompt_len tokens off the response's front) */
    int n_cut;      /* tokens the cutoff removed from the front (0: the whole sequence) */
} CutSequence;

/* The training item of one record: for a negative record a = Align-N (judge template) and
 * m = Misalign (plain template), whose response tokens are identical and index-aligned at
 * the ends; for a positive record a = Align-P and m is empty (n = 0). */
typedef struct {
    int negative;
    CutSequence a, m;
    int n_response; /* trained tokens in a (and in m for a negative record) */
} CutExample;

/* Builds the item of record r as the reference's tokenize() and generate_and_tokenize_prompt
 * do (cut-spec §1.3-1.4): the template filled with the instruction (input joined by "\n")
 * and judgment, the response appended with no separator, the whole tokenized jointly with
 * BOS; when longer than cutoff (> 0) only its last cutoff tokens are kept, and only then EOS
 * is appended (so a sequence may be cutoff + 1 long). The prompt length is that of the
 * filled template tokenized alone (BOS, no EOS, truncated alike) minus the tokens cut from
 * the full sequence beyond those cut from the prompt. cutoff <= 0: no limit. Fails when
 * Align-N and Misalign disagree on the response tokens (the reference would misalign them).
 * On failure ex holds nothing. */
int judgments_build_reference_example(const Template *tpl, const JudgmentRecord *r,
                                      const Tokenizer *t, int cutoff, CutExample *ex, CkError *err);

/* judgments_build_reference_example for callers bounded by a context: every sequence has at
 * most max_len tokens (cutoff max_len - 1, then EOS); max_len <= 0: no limit; max_len 1 is
 * refused (no room for EOS). */
int judgments_build_example(const Template *tpl, const JudgmentRecord *r, const Tokenizer *t,
                            int max_len, CutExample *ex, CkError *err);

/* Releases the arrays of ex and zeroes it. */
void judgments_example_free(CutExample *ex);

/* Chooses which records of s to train on under Align-P downsampling as the reference does
 * (finetune_unlikelihood.py --downsample; cut-spec §5.1): every negative is kept; when
 * n_keep = int(ratio * negatives) < positives, the positives kept are Python's
 * random.sample(positive_indices, n_keep) after random.seed(seed) (util/pyrandom.h), so with the
 * reference's seed 42 the subset is the reference's own; ratio < 0 (the reference's -1)
 * keeps all. keep[i] (s->n entries, caller-allocated) gets 1 for a kept record; returns the
 * count kept, or -1 when out of memory. */
int judgments_downsample(const JudgmentSet *s, double ratio, uint64_t seed, unsigned char *keep);

/* Options of judgments_build_examples (judgments_build_options_init: the released scripts'
 * construction without downsampling). */
typedef struct {
    int cutoff;            /* the reference's cutoff_len (see judgments_build_reference_example):
                              2048 in the scripts, the default; <= 0: no limit. Callers bound
                              by a context of C tokens pass at most C - 1 */
    double align_p_ratio;  /* Align-P downsampling (judgments_downsample): the scripts'
                              --downsample 0.25; < 0 keeps every positive (default -1) */
    uint64_t align_p_seed; /* the random.seed() of the sample: 42, the reference's */
} CutBuildOptions;

/* Fills o with the defaults: cutoff 2048, align_p_ratio -1 (off), align_p_seed 42. */
void judgments_build_options_init(CutBuildOptions *o);

/* What judgments_build_examples did, for the trainer to report and warn about. */
typedef struct {
    int n_records;       /* records given */
    int n_positive;      /* of n_records: positive */
    int n_negative;      /* of n_records: negative ("$ERROR$" included when loaded) */
    int n_positive_kept; /* Align-P examples after downsampling */
    int n_examples;      /* examples built: n_negative + n_positive_kept */
    int n_error;         /* negatives built whose judgment is "$ERROR$" */
    int n_truncated;     /* sequences (Align-P, Align-N, Misalign) the cutoff shortened */
    int n_response_cut;  /* of n_truncated: sequences whose response lost tokens too */
    int n_judgment_lost; /* negatives whose Align-N equals their Misalign token for token: the
                            cutoff removed the whole judgment, so nothing can be flagged and
                            the response gets plain MLE */
} CutBuildStats;

/* The training examples of a judgment set, in file order. */
typedef struct {
    CutExample *examples; /* [n] */
    int *record;          /* [n]: examples[i] is built from records[record[i]] */
    int n;
    CutBuildStats stats;
} CutExampleSet;

/* Downsamples the records of s (o->align_p_ratio, o->align_p_seed) and builds the kept ones
 * (judgments_build_reference_example with o->cutoff) into out, counting in out->stats.
 * o NULL = judgments_build_options_init's defaults. On failure (a record's responses
 * misaligned, which names its source_index; the tokenizer's error; out of memory) out holds
 * nothing. */
int judgments_build_examples(const JudgmentSet *s, const Template *tpl, const Tokenizer *t,
                             const CutBuildOptions *o, CutExampleSet *out, CkError *err);

/* Releases the examples of set and zeroes it; safe on a zeroed set. */
void judgments_example_set_free(CutExampleSet *set);

#endif
