/* known_errors.h — the known errors of judgment records, where a file carries them (the
 * synthetic world's JSONL: "error_spans", the byte ranges [start, end) of the wrong mentions
 * in "output", and "correct_output", the same response with the right values), and the
 * detection inputs of one example built from its token contrast (contrast.h) and them.
 *
 * The loader reads the judgment file a second time, beside judgments_load, and matches each
 * loaded record by its source_index (the JSONL line or the JSON array index), so the
 * judgment loaders stay unaware of fields only analysis needs. */
#ifndef CK_KNOWN_ERRORS_H
#define CK_KNOWN_ERRORS_H

#include "util/ck_error.h"
#include "analysis/contrast.h"
#include "analysis/detection.h"
#include "datasets/judgments.h"
#include "datasets/templates.h"

/* The known errors of one record. */
typedef struct {
    int has_spans;         /* 1: the record has "error_spans" (possibly empty) */
    DetectionSpan *errors; /* [n_errors] sorted, disjoint, non-empty, inside the output */
    int n_errors;
    char *correct; /* "correct_output", NULL when absent */
} KnownErrors;

/* The known errors of every record of a JudgmentSet, index for index. */
typedef struct {
    KnownErrors *records; /* [n] */
    int n;
    int n_with_spans; /* records with "error_spans" */
} KnownErrorSet;

/* Reads "error_spans" and "correct_output" of every record of s (loaded from path in format
 * fmt) into ks (index for index with s->records; a Shepherd file has none). Fails naming the
 * place ("path:LINE" or "path: record I") and the field on spans that are not [start, end]
 * integer pairs, are reversed, empty, out of order, overlapping or past the output's end, and
 * on a correct_output that is not a string. */
int known_errors_load(KnownErrorSet *ks, const char *path, JudgmentFormat fmt, const JudgmentSet *s,
                      CkError *err);

/* Releases everything ks holds and zeroes it; safe on a zeroed set. */
void known_errors_free(KnownErrorSet *ks);

/* The detection inputs of one example, owning the arrays ex points into. */
typedef struct {
    DetectionExample ex;
    double *log_pa, *log_pm;
    DetectionSpan *tokens;
    int *decisive;  /* NULL: decisive recall not measured for this example */
    int n_decisive; /* mentions that have a decisive token */
} KnownErrorsExample;

/* Builds the detection inputs of negative record r (response r->output) from its contrast c
 * and its known errors k (k->has_spans must be 1). When k has a correct response and both
 * responses' token ranges are exact, the decisive tokens are found
 * (detection_decisive_tokens) against the correct response tokenized in the same context:
 * the record's plain-prompt example (judgments_build_example with tpl, tok and cutoff, as a
 * positive); otherwise decisive recall is not measured for it. first-mention recall is
 * measured on r->output. */
int known_errors_example(const KnownErrors *k, const JudgmentRecord *r, const TokenContrast *c,
                         const Tokenizer *tok, const Template *tpl, int cutoff,
                         KnownErrorsExample *out, CkError *err);

/* Releases the arrays of e and zeroes it; safe on a zeroed one. */
void known_errors_example_free(KnownErrorsExample *e);

#endif
