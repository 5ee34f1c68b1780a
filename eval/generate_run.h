/* generate_run.h — `cutkit eval generate` as a library: answer a list of instructions with a
 * model and write AlpacaEval's model_outputs.json (eval/outputs.h), resumably.
 *
 * Each instruction is formatted with the template's prompt_no_input and answered by
 * respond_generate (eval/respond.h); record i samples with respond_record_seed(seed, i), so
 * its response depends only on the seed and i. The file is rewritten atomically every
 * save_every responses; an existing file is resumed after its records, which must be the
 * first instructions, in order, by the same generator, so a resumed run writes the bytes of an
 * uninterrupted one. Under mpirun the instructions are sharded over the ranks (eval/shard.h);
 * rank 0 alone reads and writes the file and gathers the responses in order. */
#ifndef CK_GENERATE_RUN_H
#define CK_GENERATE_RUN_H

#include <stdint.h>
#include <stdio.h>

#include "util/ck_error.h"

typedef struct {
    const char *instructions;  /* JSON array of instructions (outputs_load's shapes); required */
    const char *out;           /* model_outputs.json to write or resume; required */
    const char *model;         /* llama2.c file or Hugging Face folder; NULL: embedded */
    const char *tokenizer;     /* NULL: the model's */
    const char *adapter;       /* PEFT LoRA adapter folder merged into the model; NULL: none */
    const char *template_path; /* template JSON (its prompt_no_input); NULL: Alpaca's */
    const char *generator;     /* the "generator" written; NULL: generate_run_default_name */
    const char *const *stops;  /* stop strings, cut from the output (NULL when n_stops is 0) */
    int n_stops;
    int max_tokens;    /* tokens per response at most */
    float temperature; /* 0: greedy */
    float top_p;       /* nucleus mass for sampling */
    uint64_t seed;     /* record i samples with respond_record_seed(seed, i) */
    int limit;         /* answer only the first N instructions (0: all) */
    int save_every;    /* rewrite the file every N responses */
    FILE *log;         /* resume notice and progress at each save; NULL: none */
} GenerateRunOptions;

/* The defaults: 256 tokens, greedy (top-p 0.9 when sampling), seed 42, no limit, saves every
 * 10 responses, embedded model, Alpaca template, no stop strings, no log; instructions and out
 * unset. */
void generate_run_options_init(GenerateRunOptions *o);

/* Parses a stop-string argument: one string, or a JSON array of strings (starting with '[').
 * *stops (NULL when arg is NULL) and its strings are malloc'd; release them with
 * generate_stops_free. Fails with "expected a string or a JSON array of strings". */
int generate_stops_parse(const char *arg, char ***stops, int *n, CkError *err);

/* Releases what generate_stops_parse returned. */
void generate_stops_free(char **stops, int n);

/* The generator name of a model path: its file or folder name without extension
 * ("runs/a/model.bin" -> "model"), "stories260K" for NULL (the embedded model). */
void generate_run_default_name(const char *model, char *buf, size_t cap);

typedef struct {
    int n_records;       /* records in the file (rank 0) */
    int n_resumed;       /* of them, already there before this run */
    char generator[256]; /* the generator name written */
    int wrote;           /* 1 on the process that wrote the file (rank 0) */
} GenerateRunReport;

/* Answers the instructions o names into o->out and fills report. Fails (-1, err naming the
 * file and record) on unreadable files, an existing file that is not a partial run of these
 * instructions by this generator, or a generation failure; the responses made before a
 * failure are saved first, so that a rerun resumes after them. Collective under mpirun. */
int generate_run(const GenerateRunOptions *o, GenerateRunReport *report, CkError *err);

#endif
