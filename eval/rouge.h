/* rouge.h — ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum with the semantics of Google's
 * rouge-score package (rouge_scorer.py, tokenize.py, scoring.py; see eval/ROUGE.md): its
 * default tokenizer, optional Porter stemming, clipped n-gram counts, LCS, summary-level
 * union-LCS over newline-separated sentences, F = 2PR/(P+R); the mean over items, and
 * optionally bootstrap low/mid/high percentiles of the mean. */
#ifndef CK_ROUGE_H
#define CK_ROUGE_H

#include <stddef.h>
#include <stdint.h>

#include "util/ck_error.h"

typedef enum { ROUGE_1, ROUGE_2, ROUGE_L, ROUGE_LSUM, ROUGE_N_TYPES } RougeType;

/* rouge_score's key of type t: "rouge1", "rouge2", "rougeL", "rougeLsum". */
const char *rouge_type_name(RougeType t);

typedef struct {
    double precision, recall, fmeasure;
} RougeScore;

/* One text as rouge_score's DefaultTokenizer sees it. */
typedef struct {
    char *chars;   /* the tokens, each NUL-terminated, one after the other (owned) */
    size_t *start; /* token i is chars + start[i] (owned) */
    int *line;     /* token i's line (number of '\n' before it), for ROUGE-Lsum (owned) */
    int n;
} RougeTokens;

/* Tokenizes text as rouge_score does: lowercase (Python's str.lower, under which only U+0130
 * and U+212A become ASCII letters), every run of characters other than a-z0-9 a separator,
 * and with stem set each token longer than 3 characters Porter-stemmed (porter.h). Bytes that
 * are not UTF-8 separate tokens too. Fills *out (release with rouge_tokens_free); returns 0,
 * or -1 with err when out of memory. */
int rouge_tokenize(const char *text, int stem, RougeTokens *out, CkError *err);

/* Releases the token arrays and zeroes t. */
void rouge_tokens_free(RougeTokens *t);

/* rouge_score's scoring.fmeasure: 2PR/(P+R), 0 when P+R is 0. */
double rouge_fmeasure(double precision, double recall);

/* Scores prediction against reference (rouge_score's RougeScorer.score(target=reference,
 * prediction)) into out[ROUGE_N_TYPES]. Returns 0, or -1 with err when out of memory (or when
 * two lines are so long, ~16k tokens each, that ROUGE-Lsum's LCS table would pass 1 GiB). */
int rouge_score_pair(const char *reference, const char *prediction, int stem,
                     RougeScore out[ROUGE_N_TYPES], CkError *err);

/* rouge_score's score_multi: scores prediction against each of n_refs >= 1 references and keeps,
 * per type, the score of the reference with the highest F (the first on ties), whose index goes
 * to best[t] when best is not NULL. Returns 0 or -1 with err. */
int rouge_score_multi(const char *const *references, int n_refs, const char *prediction, int stem,
                      RougeScore out[ROUGE_N_TYPES], int best[ROUGE_N_TYPES], CkError *err);

/* The plain mean of each of P, R, F over items[0..n) (summed in order, then divided by n). */
void rouge_mean(const RougeScore (*items)[ROUGE_N_TYPES], int n, RougeScore mean[ROUGE_N_TYPES]);

typedef struct {
    int samples;       /* bootstrap resamples (rouge_score's n_samples, default 1000) */
    double confidence; /* central interval (default 0.95: the 2.5th and 97.5th percentiles) */
    uint64_t seed;     /* util/rng.h seed of the resampling */
} RougeBootstrapOptions;

/* Sets rouge_score's BootstrapAggregator defaults: 1000 samples, 0.95, seed 0. */
void rouge_bootstrap_options_init(RougeBootstrapOptions *o);

/* rouge_score's BootstrapAggregator with a seeded generator: o->samples times, n items drawn
 * with replacement (index = uniform below n by rejection on rng_next) give a mean; low, mid and
 * high are the (1-c)/2, 0.5 and 1-(1-c)/2 percentiles of those means, linearly interpolated as
 * numpy.percentile does. Its mid is the median of the resampled means, not the mean. Returns
 * 0, or -1 with err (n < 1, samples < 1, confidence outside [0, 1], out of memory). */
int rouge_bootstrap(const RougeScore (*items)[ROUGE_N_TYPES], int n, const RougeBootstrapOptions *o,
                    RougeScore low[ROUGE_N_TYPES], RougeScore mid[ROUGE_N_TYPES],
                    RougeScore high[ROUGE_N_TYPES], CkError *err);

/* `cutkit eval rouge`: what to read, how to score, where to write. */
typedef struct {
    const char *data;             /* JSONL: one record per item */
    const char *references;       /* NULL: data holds both fields; else a second JSONL of the
                                     references, paired with data's records in order */
    const char *out;              /* directory for rouge.json and items.jsonl (created) */
    const char *prediction_field; /* default "prediction" */
    const char *reference_field;  /* default "reference": a string or an array of strings */
    int stem;                     /* Porter stemming (rouge_score's use_stemmer) */
    int bootstrap;                /* also compute bootstrap low/mid/high with .boot */
    RougeBootstrapOptions boot;
} RougeRunOptions;

/* Sets the defaults above (no stemming, no bootstrap). */
void rouge_run_options_init(RougeRunOptions *o);

/* What rouge_run computed, for the caller's summary table. */
typedef struct {
    int n; /* items scored */
    RougeScore mean[ROUGE_N_TYPES];
    RougeScore low[ROUGE_N_TYPES], mid[ROUGE_N_TYPES], high[ROUGE_N_TYPES]; /* when bootstrapped */
} RougeSummary;

/* Reads the items, scores each and writes OUT/items.jsonl (one line per item: its line, id when
 * the record has one, and the four scores) and OUT/rouge.json (n, the settings, the mean of each
 * P/R/F and, when asked, the bootstrap percentiles), each atomically. Every record is read and
 * scored before anything is written: a record that is not a JSON object, lacks a field or has one
 * of the wrong type fails with "file: line N: field 'F': ..." and writes nothing. Fills *summary
 * (may be NULL); returns 0 or -1 with err. */
int rouge_run(const RougeRunOptions *o, RougeSummary *summary, CkError *err);

#endif
