/* hellaswag.h — HellaSwag as lm-evaluation-harness reads it: the canonical jsonl (rowanz) or
 * llama.cpp's lossy text copy (a labelled variant), into preprocessed queries and endings.
 * datasets/README.md describes both formats and what the llama.cpp copy loses. */
#ifndef CK_HELLASWAG_H
#define CK_HELLASWAG_H

#include <stddef.h>

#include "datasets/benchmarks.h"
#include "util/ck_error.h"
#include "util/strbuf.h"

#define HELLASWAG_N_ENDINGS 4

/* rowanz/hellaswag data/hellaswag_val.jsonl: sha256 and size (10,042 rows). */
#define HELLASWAG_VAL_SHA256 "0aa3b88843990f3f10a97b9575c94d7b71fb2205240ba04ae4884d9e9c992588"
#define HELLASWAG_VAL_BYTES  12246618
/* klosax/hellaswag_text_data hellaswag_val_full.txt (llama.cpp's format), shipped in
 * datasets/data under this name. */
#define HELLASWAG_LLAMACPP_SHA256 "d572539320eb2050e858ca34b495bbe2103e3b3f1391a9c3bcdf215b0bb93bd1"
#define HELLASWAG_LLAMACPP_FILE   "hellaswag_val_llamacpp.txt"

typedef enum {
    HELLASWAG_AUTO,      /* by content: a first line starting with '{' is jsonl */
    HELLASWAG_CANONICAL, /* rowanz's jsonl: task "hellaswag" */
    HELLASWAG_LLAMACPP   /* llama.cpp's 6 lines a task: task "hellaswag_llamacpp" (lossy) */
} HellaswagFormat;

/* One item, ready to score: context = query, continuation i = " " + choices[i]. */
typedef struct {
    char *id;                           /* canonical: "ind"; llama.cpp: the task's index */
    char *query;                        /* the harness's doc_to_text */
    char *choices[HELLASWAG_N_ENDINGS]; /* the preprocessed endings */
    int gold;                           /* label, 0-3 */
    int line;                           /* the item's (first) line in its file */
} HellaswagItem;

typedef struct {
    HellaswagItem *items;
    int n;
    HellaswagFormat format; /* as read (never AUTO) */
    int lossy;              /* 1: the llama.cpp copy; its scores are not the harness's */
    const char *task;       /* "hellaswag" or "hellaswag_llamacpp": the name results carry */
    char sha256[65];        /* of the file's bytes */
    int sha256_match;       /* 1 when sha256 is the published one of this format's val file */
    char warning[256];      /* "" or why the data may not be the published file */
} HellaswagSet;

/* Reads a HellaSwag file in format (AUTO: guessed) and checks its sha256 against the
 * published one (a difference is not an error: set->warning says it, and the caller shows
 * it). Bad records fail with "path:LINE: field: ...". The caller frees with hellaswag_free. */
int hellaswag_load(HellaswagSet *set, const char *path, HellaswagFormat format, CkError *err);

/* hellaswag_load on text[0..len) held in memory; source names it in messages. */
int hellaswag_parse(HellaswagSet *set, const char *text, size_t len, HellaswagFormat format,
                    const char *source, CkError *err);

/* Releases everything set owns and zeroes it; safe on a zeroed set. */
void hellaswag_free(HellaswagSet *set);

/* Appends the harness's preprocess(s) for valid UTF-8 s[0..n): strip, " [title]" -> ". ",
 * every "[...]" on one line removed, then each "  " -> " " (one pass, as Python's replace).
 * Returns 0, or -1 when out of memory. */
int hellaswag_preprocess(const char *s, size_t n, StrBuf *out);

/* Appends the context of item after the exemplars shots[0..n_shots): each exemplar's query +
 * " " + its gold ending + "\n\n", then item's query. Returns 0 or -1. */
int hellaswag_context(const HellaswagItem *item, const HellaswagItem *const *shots, int n_shots,
                      StrBuf *out);

/* Converts set's items into McDocs for eval/mc.h (question = query, choices = endings, gold,
 * id, line). The caller frees out with benchmarks_free. */
int hellaswag_to_mc_docs(const HellaswagSet *set, McDocSet *out, CkError *err);

#endif
