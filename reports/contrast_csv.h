/* contrast_csv.h — the first examples of a run's contrast.csv (per-token log pA, log pM, the
 * log ratio and flags at several λ), read with libcsv, for the report's example browser. */
#ifndef CK_CONTRAST_CSV_H
#define CK_CONTRAST_CSV_H

#include "util/ck_error.h"

typedef struct {
    int position, token_id;           /* -1 when the column is absent */
    char *text;                       /* token_text as written (any bytes; escape before display) */
    double log_pa, log_pm, log_ratio; /* NAN when absent; log_ratio = log_pa - log_pm if absent */
    int flagged;                      /* at the chosen flag column; 0 without one */
} ContrastCsvToken;

typedef struct {
    long example; /* the example column's value */
    int n, cap;
    ContrastCsvToken *tokens; /* sorted by position */
} ContrastCsvExample;

typedef struct {
    int n;
    ContrastCsvExample *examples; /* in order of first appearance in the file */
    double flag_lambda;           /* λ of the flag column used, NAN when the file has none */
} ContrastCsv;

/* Reads the tokens of the first max_examples distinct examples of the CSV file at path into
 * cs (released with contrast_csv_free, also on failure). Leading lines starting with '#' are
 * comments; the header names the columns (example and token_text are required; position,
 * token_id, log_pa, log_pm, log_ratio and flagged@λ... are optional). The flag column is
 * flagged@λ with λ equal to lambda when there is one, else the first. Fails naming the
 * record and field on a malformed file. */
int contrast_csv_read(ContrastCsv *cs, const char *path, int max_examples, double lambda,
                      CkError *err);

/* Releases everything contrast_csv_read allocated. */
void contrast_csv_free(ContrastCsv *cs);

#endif
