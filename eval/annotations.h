/* annotations.h — AlpacaEval's annotations.json: one pairwise judgment per instruction.
 *
 * Fields as AlpacaEval writes them: instruction, output_1 (the baseline / reference,
 * generator_1), generator_1, dataset, output_2 (the evaluated model, generator_2),
 * generator_2, annotator, preference (1: output_1 better, 2: output_2 better, 1.5 or legacy 0:
 * draw, continuous values in [1, 2] for weighted judges, null: failed), and cutkit's
 * is_switched (the order the judge saw), raw_completion (the judge's raw verdict, before
 * switching back) and error (why a preference is null). Other fields of files made
 * elsewhere (price_per_example, ...) are read past and not written back. */
#ifndef CK_ANNOTATIONS_H
#define CK_ANNOTATIONS_H

#include "util/ck_error.h"

typedef struct {
    char *instruction, *output_1, *output_2; /* output_* NULL when absent in the file */
    char *generator_1, *generator_2, *dataset, *annotator; /* NULL when absent or null */
    double preference;    /* as in the file (0 stays 0); NAN when null or absent */
    int is_switched;      /* 1, 0, or -1 when unknown */
    char *raw_completion; /* JSON text of the raw verdict, NULL when none */
    char *error;          /* why the judgment failed, NULL when it did not */
} Annotation;

typedef struct {
    Annotation *items;
    int n, cap;
} AnnotationSet;

/* Reads the annotations.json at path into s (initialised here). A record needs an
 * "instruction" string; a preference that is neither a number nor null is refused, naming
 * the record. */
int annotations_load(AnnotationSet *s, const char *path, CkError *err);

/* annotations_load on the file's text in memory (text[0..len), exactly one JSON value); path
 * names it in messages. */
int annotations_parse(AnnotationSet *s, const char *text, size_t len, const char *path,
                      CkError *err);

/* Appends a zeroed annotation (preference NAN, is_switched -1) and returns it, or NULL when
 * out of memory. The caller fills its strings (malloc'd; the set frees them). */
Annotation *annotations_add(AnnotationSet *s);

/* Writes s to path atomically, laid out like AlpacaEval's files. */
int annotations_save(const AnnotationSet *s, const char *path, CkError *err);

/* Frees the strings of one annotation and zeroes it (preference NAN, is_switched -1). */
void annotation_clear(Annotation *a);

/* Releases s and zeroes it; safe on a zeroed value. */
void annotations_free(AnnotationSet *s);

#endif
