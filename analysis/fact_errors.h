/* fact_errors.h — how often a model states wrong facts: its responses to the synthetic
 * world's instructions, judged by the world's rule-based judge (datasets/synth.h). Besides the
 * error rate it counts the colour mentions that repeat the world's misconception (the
 * object -> colour map a misconceived warm-up taught), the error CUT's unlikelihood term is
 * meant to remove. */
#ifndef CK_FACT_ERRORS_H
#define CK_FACT_ERRORS_H

#include "util/ck_error.h"
#include "datasets/synth.h"

typedef struct {
    int n_responses;
    int n_with_error;          /* responses with at least one wrong fact */
    int n_errors;              /* distinct (kind, wrong word) errors over all responses */
    int n_colour_mentions;     /* mentions of any colour word */
    int n_misconceived;        /* of those: the misconceived colour of the instruction's object,
                                  where that colour is not the instruction's */
    int n_misconception_items; /* responses whose object has a misconceived colour that differs
                                  from the instruction's (the items that can show it) */
    int n_misconception_shown; /* of those: responses that state the misconceived colour */
} FactErrorStats;

/* Judges the n responses to synthetic-world instructions (instructions[i], responses[i]) by
 * the world's rules and fills s; misconceived is the world's object -> colour map
 * (SynthWorld.misconceived), or NULL when the world has no misconception. */
int fact_errors_measure(const char *const *instructions, const char *const *responses, int n,
                        const int *misconceived, FactErrorStats *s, CkError *err);

/* Writes s as a JSON object (error_rate, its standard error sqrt(p(1-p)/(n-1)), errors per
 * response, misconception rate, counts) to path atomically. */
int fact_errors_write_json(const FactErrorStats *s, const char *path, CkError *err);

#endif
