/* stage.h — the steps of a resumable pipeline (align-online, sweep, demo): each step is one of
 * cutkit's own commands run as a child process (exactly what a user could run by hand, with
 * its own resumable run directory), a finished step leaves a marker file so that a rerun
 * skips it, and a stop flag (SIGINT/SIGTERM) lets the step in hand end before the pipeline
 * stops. The child processes are the isolation and resume unit: a crash or a kill loses at
 * most the step in hand, which resumes from its own checkpoints. */
#ifndef CK_STAGE_H
#define CK_STAGE_H

#include <signal.h>

#include "util/ck_error.h"

typedef struct {
    const char *binary;                /* the cutkit executable the steps run (required) */
    const volatile sig_atomic_t *stop; /* non-zero: stop after the step in hand (NULL: never) */
} StageRunner;

/* Installs the SIGINT/SIGTERM handler that sets the process's one stop flag, and returns
 * that flag for a StageRunner (a signal handler can set nothing but a process-wide flag). The
 * children get the signal too (they share the process group) and save before they exit. */
const volatile sig_atomic_t *stage_catch_stop_signals(void);

/* 1 when r's stop flag is set. */
int stage_stop_requested(const StageRunner *r);

/* Runs `cutkit ARGV...` (argv[0] is the command name, NULL-terminated) through r->binary with
 * stdin/stdout/stderr inherited, and waits. The child gets CUTKIT_PARENT_PID
 * (util/parentdeath.h), so that it is sent SIGTERM (save and stop) when this process dies,
 * even by SIGKILL; call it from the main thread. Returns 0 when it exited with status 0;
 * otherwise -1 with err naming the command and its exit status or signal, or why it could not
 * start (the child has printed its own reason). */
int stage_run(const StageRunner *r, char *const argv[], CkError *err);

/* 1 when the marker dir/name of a finished step exists. */
int stage_marked(const char *dir, const char *name);

/* Writes the marker dir/name (an empty file, written atomically); returns 0 or -1 with err. */
int stage_mark(const char *dir, const char *name, CkError *err);

/* Runs `cutkit train ARGS... --out RUN_DIR [--resume]` (args NULL-terminated, at most 60)
 * unless the marker RUN_DIR/trained says it finished: RUN_DIR is created, --resume is added
 * when it holds checkpoints (a fresh directory starts fresh), and the marker is written after
 * a successful training. Returns 0, or -1 with err when the training failed or a stop was
 * requested. */
int stage_train(const StageRunner *r, const char *run_dir, char *const args[], CkError *err);

#endif
