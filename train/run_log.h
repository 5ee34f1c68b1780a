/* run_log.h — the per-update logs of a run directory (steps.jsonl: one JSON object per update;
 * tokens.csv: CUT's per-token detection rows), opened for a fresh run or for one resumed from
 * a checkpoint, whose later updates are about to be replayed. */
#ifndef CK_RUN_LOG_H
#define CK_RUN_LOG_H

#include <stdint.h>
#include <stdio.h>

#include "util/ck_error.h"

typedef enum {
    RUN_LOG_JSONL, /* a line's update is its object's "step" */
    RUN_LOG_CSV,   /* a line's update is its leading number (the header has none) */
} RunLogKind;

/* Opens the log at path for appending (the caller fcloses it). A fresh run (step 0) starts it
 * holding header (NULL: empty), and so does a resumed run whose log does not start with it
 * (missing, or cut by hand). A resumed run keeps the lines of updates 1..step and the
 * lines without an update (a header), drops the rest (they are replayed) and a torn last line
 * (a killed run's); the kept lines go to path through an AtomicFile, so a crash leaves the
 * old log or the new one, never a half-written one. A missing log counts as empty. Returns
 * NULL with err naming path on failure, a steps.jsonl line that is not a JSON object
 * included. */
FILE *run_log_open(const char *path, RunLogKind kind, int64_t step, const char *header,
                   CkError *err);

#endif
