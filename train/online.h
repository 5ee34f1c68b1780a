/* online.h — the stages of online CUT alignment that are not training: the instruction
 * pool, generating responses with the current model, and judging them with a pluggable
 * judge. online_run (train/online_run.h) strings them together with `cutkit train` and
 * `cutkit merge` so that each stage leaves a file and every iteration resumes. */
#ifndef CK_ONLINE_H
#define CK_ONLINE_H

#include <stdint.h>

#include "util/ck_error.h"
#include "datasets/judgments.h"
#include "formats/lm.h"
#include "datasets/templates.h"

typedef struct {
    char **instructions; /* each the instruction joined with its input, as training sees it */
    int n;
} InstructionPool;

/* Reads instructions from path: a JSON array of strings or of objects with "instruction"
 * (and optional "input", joined as the reference joins them), or JSON lines of such objects
 * (AlpacaEval's eval set, cutkit's instructions.json, a judgment file all qualify). An item
 * without a string instruction, or whose text is not valid UTF-8, is reported with path and
 * index. */
int online_load_instructions(InstructionPool *pool, const char *path, CkError *err);

/* Releases the pool's strings. */
void online_instructions_free(InstructionPool *pool);

typedef struct {
    int max_tokens;
    float temperature; /* 0: greedy */
    float top_p;
    uint64_t seed; /* the response to item i is sampled with seed + i: resumable per item */
    /* the text as the reference's scripts/generate.py keeps it: */
    int keep_after_split; /* 1: also what follows a response_split the model writes */
    int strip;            /* 1: stripped of white space at both ends, as Python's str.strip() */
} OnlineGenerateOptions;

/* Generates the response of the model to one instruction: the template's prompt_no_input
 * filled with it, decoded until EOS or max_tokens, with the text cut at the template's
 * response_split if the model writes one (unless o->keep_after_split). The model's bytes are
 * made valid UTF-8 (each ill-formed sequence replaced by U+FFFD), as the judgment files must
 * be, then (o->strip) stripped as Python's str.strip() strips. Returns a malloc'd string in
 * *response. */
int online_generate(const LanguageModel *lm, const Template *tpl, const char *instruction,
                    const OnlineGenerateOptions *o, int index, char **response, CkError *err);

typedef enum { ONLINE_JUDGE_SYNTH, ONLINE_JUDGE_COMMAND, ONLINE_JUDGE_FILE } OnlineJudgeKind;

typedef struct {
    OnlineJudgeKind kind;
    const char *command;    /* COMMAND: run by /bin/sh -c, one JSON object on stdin */
    double timeout_seconds; /* COMMAND: a judge that takes longer has failed */
    JudgmentSet file;       /* FILE: precomputed judgments, matched on instruction + output */
} OnlineJudge;

/* Sets j up as kind spec says: "synth", "file:PATH" (a judgment file in any format
 * judgments_load reads) or "command:CMD". */
int online_judge_open(OnlineJudge *j, const char *spec, double timeout_seconds, CkError *err);

/* Releases what online_judge_open loaded. */
void online_judge_close(OnlineJudge *j);

/* Judges one response: *judgment is the malloc'd critique, or NULL when the judge finds
 * nothing wrong (a positive). *n_errors is the synthetic judge's error count (-1 for other
 * judges). A judge that fails (command exit status, timeout, no matching record, an answer
 * that is not a string or null "judgment" or has content after its JSON object, a NUL byte,
 * a judgment that is not valid UTF-8) returns -1 with the reason in err and *judgment NULL;
 * the caller decides whether to skip the item. */
int online_judge(const OnlineJudge *j, const char *instruction, const char *response,
                 char **judgment, int *n_errors, CkError *err);

#endif
