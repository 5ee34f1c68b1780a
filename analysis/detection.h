/* detection.h — how well CUT's inappropriate-token detection finds the known errors of a
 * response: token precision/recall/F1, recall per wrong mention and per decisive token, at
 * one λ or many at once (a precision-recall curve), accumulated over examples.
 *
 * Definitions (one example; response tokens k with byte ranges [a_k, b_k) in the response,
 * wrong mentions i with byte ranges [s_i, e_i)):
 *  - token k is flagged iff log pA - log pM > log λ, decided by cut_detect (train/cut.h), so
 *    exactly as training flags it (strict; fp32 underflow rules);
 *  - token k is an error token iff it overlaps a mention: a_k < e_i and s_i < b_k for some i
 *    (a token with an empty range, EOS, never is);
 *  - precision = flagged error tokens / flagged tokens, recall = flagged error tokens / error
 *    tokens, F1 = 2PR / (P + R); each is 0 when its denominator is 0 (no token flagged, no
 *    error token, P + R = 0);
 *  - chance precision = error tokens / tokens: the expected precision of flagging tokens at
 *    random, the baseline a detector must beat;
 *  - mention recall = mentions with at least one flagged overlapping token / mentions;
 *  - decisive recall = mentions whose decisive token is flagged / mentions that have one;
 *  - first-mention recall = mention recall over first mentions only: mentions whose text
 *    (compared byte for byte, ignoring ASCII case) differs from every earlier mention's in the
 *    response. A later mention of the same wrong word is predictable from the response so
 *    far under both contexts, so it carries little contrast; the first one carries it all.
 *
 * The decisive token of a mention (detection_decisive_tokens): the response is the correct
 * response with each wrong mention substituted for the right word, so the text between
 * mentions is the same in both. The counterpart [s'_i, e'_i) of mention i in the correct
 * response starts where the common text before it ends, and ends at the first byte
 * e' > s'_i where the response's text after the mention (up to the next mention, or to the
 * end, where it must end the correct response too) continues; an empty text between two
 * mentions extends the counterpart over word bytes (synth_is_word_byte) instead. List the response
 * tokens from the first one that overlaps [s_i, e_i) on, r_0, r_1, ..., and the correct response's
 * tokens (tokenized in the same context) from the first one that overlaps [s'_i, e'_i) on,
 * c_0, c_1, .... The decisive token is the first r_j, among those that start before the next
 * mention (or overlap this one; after the last mention: up to EOS), that has no c_j, or a different
 * id than c_j, or a different start relative to the mention (a(r_j) - s_i != a(c_j) - s'_i): the
 * token where, given the text so far, the response leaves the right value's spelling. It is inside
 * the mention except when the wrong word is a prefix of the right one ("ball" for "balloon"): then
 * it is the token after the word, which is not an error token. Later tokens of the same word are
 * predictable from the decisive one, and later mentions of the same wrong value from the
 * first, which is why token recall stays low while decisive recall is high. A mention has none
 * when no counterpart is found (the texts do not differ by substitution) or no token
 * differs. */
#ifndef CK_DETECTION_H
#define CK_DETECTION_H

#include "util/ck_error.h"

/* A byte range [start, end) of a response. */
typedef struct {
    int start, end;
} DetectionSpan;

/* One example's inputs. */
typedef struct {
    int n;                       /* response tokens */
    const double *log_pa;        /* [n] log p under the Align-N (judgment) context */
    const double *log_pm;        /* [n] log p under the Misalign (plain) context */
    const DetectionSpan *tokens; /* [n] each token's bytes in the response, in order */
    int n_errors;                /* wrong mentions */
    const DetectionSpan *errors; /* [n_errors] sorted, disjoint, non-empty */
    const int *decisive;         /* [n_errors] decisive token of each mention, -1: none;
                                    NULL: decisive recall not measured for this example */
    const char *response;        /* the response text, for first mentions; NULL: first-
                                    mention recall not measured for this example */
} DetectionExample;

/* Counts at one λ, summed over examples. */
typedef struct {
    double lambda;
    long n_examples;
    long n_tokens, n_error_tokens;    /* response tokens; of them, error tokens */
    long n_flagged, n_flagged_errors; /* flagged tokens; of them, error tokens */
    long n_mentions, n_mentions_found;
    long n_decisive, n_decisive_found; /* mentions with a decisive token; of them, flagged */
    long n_first, n_first_found;       /* first mentions of a wrong word; of them, found */
} DetectionCounts;

typedef struct {
    double precision, recall, f1;
    double chance_precision; /* error tokens / tokens */
    double mention_recall, decisive_recall, first_mention_recall;
    double flagged_fraction; /* flagged tokens / tokens */
} DetectionScores;

/* Zeroes counts[0..n) and sets counts[i].lambda = lambdas[i]. */
void detection_counts_init(DetectionCounts *counts, const double *lambdas, int n);

/* Adds example ex to counts[0..n), each at its own λ (one pass for a whole curve). Refuses
 * token or error ranges that are out of order, reversed or negative, and decisive indices
 * out of range, naming the index. */
int detection_accumulate(const DetectionExample *ex, DetectionCounts *counts, int n, CkError *err);

/* Adds the counts of b into a (same λ; for merging partial results). */
void detection_counts_add(DetectionCounts *a, const DetectionCounts *b);

/* Returns the scores of c (zero denominators give 0, see above). */
DetectionScores detection_scores(const DetectionCounts *c);

/* Finds the decisive token of every wrong mention (definition above) into decisive[i] (a
 * response token index, or -1): response and its tokens (ids[n], tokens[n]); correct and its
 * tokens (correct_ids[n_correct], correct_tokens[n_correct]), tokenized in the same context.
 * Returns the number of mentions that have one. */
int detection_decisive_tokens(const char *response, const int *ids, const DetectionSpan *tokens,
                              int n, const char *correct, const int *correct_ids,
                              const DetectionSpan *correct_tokens, int n_correct,
                              const DetectionSpan *errors, int n_errors, int *decisive);

#endif
