/* rundir.h — one run directory read into memory for the reports: its JSON files (each may
 * be absent) and the training curve of steps.jsonl. Absent files are normal (a run that was
 * never evaluated); files that are present but malformed are errors naming file and place. */
#ifndef CK_RUNDIR_H
#define CK_RUNDIR_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "util/ck_error.h"

/* The JSON files of a run directory the reports read. */
typedef enum {
    RUN_CONFIG,    /* config.json */
    RUN_MC,        /* eval/mc/results.json (lm-evaluation-harness shape) */
    RUN_WINRATE,   /* eval/winrate.json */
    RUN_DETECTION, /* detection.json */
    RUN_ERRORS,    /* errors.json */
    RUN_ROUGE,     /* eval/rouge/rouge.json (`cutkit eval rouge --out RUN/eval/rouge`), else
                      rouge/rouge.json */
    RUN_N_FILES
} RunFile;

/* steps.jsonl as columns; a field a line lacks is NAN there (MLE runs have no flagged_fraction). */
typedef struct {
    int n;
    double *step, *lr, *loss, *loss_mle, *loss_ul, *flagged_fraction;
} RunSteps;

typedef struct {
    char *path;               /* as given */
    char *label;              /* config.json "label", else the directory's name */
    cJSON *json[RUN_N_FILES]; /* NULL where the file is absent */
    RunSteps steps;           /* n = 0 without steps.jsonl */
    char *contrast_path;      /* RUN/contrast.csv, or NULL when absent */
} RunDir;

/* Relative path of one of the JSON files inside a run directory ("eval/mc/results.json"). */
const char *rundir_file_name(RunFile f);

/* Reads the run directory at path into rd (released with rundir_close, also on failure).
 * Fails when path is not a directory or a file in it is malformed; a steps.jsonl whose last
 * line is incomplete (a run still writing) loses that line only. */
int rundir_open(RunDir *rd, const char *path, CkError *err);

/* Releases everything rundir_open allocated; rd may be zeroed or half-opened. */
void rundir_close(RunDir *rd);

/* The number at a '/'-separated key path inside root ("results/arc_challenge/acc_norm,none";
 * a numeric component indexes an array), or NAN when root is NULL, a key is missing or the
 * value is not a number. */
double rundir_json_number(const cJSON *root, const char *path);

/* config.json's number under key ("lambda"), or NAN. */
double rundir_config_number(const RunDir *rd, const char *key);

/* Mean of the last k finite values of v[0..n) (fewer when there are fewer), or NAN when
 * there is none. */
double rundir_tail_mean(const double *v, int n, int k);

#endif
