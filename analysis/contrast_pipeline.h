/* contrast_pipeline.h — `cutkit contrast` as one library call: a judgment file and a model
 * in, a folder out holding contrast.csv, detection.json (when the records carry error_spans)
 * and figures/. It loads the records and their known errors, the templates, the model with
 * its tokenizer and optional adapter, runs contrast_run over the negatives (contrast_run.h)
 * with the figures' collection and the terminal view as its per-example callback
 * (contrast_views.h), then writes detection.json and draws the figures. The command only
 * parses flags into ContrastPipelineOptions and prints the result. */
#ifndef CK_CONTRAST_PIPELINE_H
#define CK_CONTRAST_PIPELINE_H

#include <stdio.h>

#include "util/ck_error.h"
#include "analysis/contrast_run.h"
#include "analysis/figures.h"
#include "model/weight.h"

#define CONTRAST_MAX_LAMBDAS 32

typedef struct {
    const char *judgments;     /* the judgment file (required) */
    const char *format;        /* "cut", "shepherd", "jsonl" or "auto" (by extension) */
    int skip_bad;              /* skip and count malformed records */
    const char *model;         /* lm_open's: NULL for the embedded stories260K */
    const char *tokenizer;     /* NULL: the model's */
    const char *adapter;       /* a PEFT LoRA folder, or NULL */
    WeightDtype base_dtype;    /* how the model's matrices are held (lm_open_held; a Hugging
                                  Face folder only): WEIGHT_F32 by default */
    const char *template_path; /* templates JSON; NULL: the reference Alpaca templates */
    const char *lambdas;       /* "1.1,1.2,2": contrast_parse_lambdas's list, kept as text
                                  for the CSV's comment line */
    int limit;                 /* the first N negatives (<= 0: all) */
    const char *out;           /* the folder written (created with its parents; locked) */
    const char *plots;         /* "png", "svg" or "none" (NULL: none) */
    int example;               /* record drawn as the strip; -1: the first negative */
    int heatmap_rows;          /* examples in the heatmap */
    FILE *show;                /* the terminal view of the first show_max examples, or NULL */
    int show_max;
    int show_colour; /* ANSI colours (stdout is a terminal) */
    FILE *progress;  /* progress lines with an ETA, or NULL: on a terminal one line rewritten,
                        else a line every 10 s; nothing for a run under 2 s */
} ContrastPipelineOptions;

/* The command's defaults: format "auto", λs "1.1,1.2,2", plots "png", the first negative as
 * the strip, 100 heatmap rows, no limit, no view, the embedded model. */
ContrastPipelineOptions contrast_pipeline_defaults(void);

typedef struct {
    ContrastRunResult run;
    double lambdas[CONTRAST_MAX_LAMBDAS]; /* the requested λs, parsed */
    int n_lambdas;
    char *csv_path, *json_path, *figures_dir; /* under out (owned) */
    /* how far the run got, for a caller that reports each finished step */
    int csv_written;       /* contrast.csv is complete */
    int detection_written; /* detection.json too (records with error_spans) */
    int figures_started;   /* figures were being drawn */
    int strip_missing;     /* the strip's record was skipped (too long for the context) */
    FigureTarget figures;  /* .note: why gnuplot made no image; .gnuplot_ran */
    int bad_example;       /* failed because o->example names no contrasted negative record */
} ContrastPipelineResult;

/* Parses a comma-separated list of positive finite numbers into out (at most max); returns
 * how many (0 for an empty text), or -1 for anything else (a bad number, more than max). */
int contrast_parse_lambdas(const char *text, double *out, int max);

/* Runs the whole contrast described by o into o->out. r is filled as far as the run got,
 * also on failure (see the step flags), and released with contrast_pipeline_result_free.
 * o->out is locked while the run writes it: another process writing it fails the run with
 * "OUT is in use by pid N" (util/outdir.h). Returns 0, or -1 with err naming the file, record
 * or step; when o->example is not a
 * negative among the records contrasted (the strip needs log pM), r->bad_example is set. */
int contrast_pipeline_run(const ContrastPipelineOptions *o, ContrastPipelineResult *r,
                          CkError *err);

/* Releases what r owns and zeroes it; safe on a zeroed result. */
void contrast_pipeline_result_free(ContrastPipelineResult *r);

#endif
