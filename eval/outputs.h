/* outputs.h — AlpacaEval's model_outputs.json: a JSON array of {"instruction", "output",
 * "generator", "dataset"} objects, one per evaluation instruction, in the evaluation set's
 * order. The same reader takes the instruction lists that `cutkit eval generate` answers:
 * a model_outputs.json of any model (the 805 AlpacaEval instructions live in every
 * shared/data/alpaca_eval/results/<model>/model_outputs.json), a JSON array of
 * {"instruction", "input" (optional), "dataset" (optional)} objects, or a JSON array of
 * strings. */
#ifndef CK_OUTPUTS_H
#define CK_OUTPUTS_H

#include <cjson/cJSON.h>

#include "util/ck_error.h"

typedef struct {
    char *instruction; /* with "\n" + input appended when the record had a non-empty input */
    char *output;      /* NULL when the record has none (an instruction list) */
    char *generator;   /* NULL when absent */
    char *dataset;     /* NULL when absent */
} ModelOutput;

typedef struct {
    ModelOutput *items;
    int n, cap;
} ModelOutputs;

/* Reads the JSON array at path into o (initialised here). need_output: every record must
 * have an "output" string. Messages name the file, the record index and the field. */
int outputs_load(ModelOutputs *o, const char *path, int need_output, CkError *err);

/* outputs_load on the file's text in memory (text[0..len), exactly one JSON value); path names
 * it in messages. */
int outputs_parse(ModelOutputs *o, const char *text, size_t len, int need_output, const char *path,
                  CkError *err);

/* Appends a record (the strings are copied; NULLs stay NULL). */
int outputs_append(ModelOutputs *o, const char *instruction, const char *output,
                   const char *generator, const char *dataset, CkError *err);

/* Writes o to path atomically as a JSON array in AlpacaEval's field order, laid out like
 * AlpacaEval's own files; records without output are written with "output": "". */
int outputs_save(const ModelOutputs *o, const char *path, CkError *err);

/* Prints a JSON array of flat objects as pandas' to_json(orient="records", indent=2) lays
 * out AlpacaEval's files (one field per line, `"key":value`); returns a malloc'd string or
 * NULL when out of memory. Shared by the annotations writer. */
char *outputs_print_records(const cJSON *array);

/* Releases o and zeroes it; safe on a zeroed value. */
void outputs_free(ModelOutputs *o);

#endif
