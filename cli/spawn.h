/* spawn.h — what the commands that orchestrate others (align-online, sweep, demo) share:
 * running cutkit's own commands as child processes (each stage a separate process with its
 * own resumable run directory, exactly what a user could run by hand), stage markers, and a
 * stop flag set by SIGINT/SIGTERM. */
#ifndef CK_SPAWN_H
#define CK_SPAWN_H

#include <signal.h>

/* Runs this cutkit binary with argv (argv[0] is the command name, NULL-terminated), with
 * stdin/stdout/stderr inherited, and waits. Returns the child's exit status, 128 + N when
 * signal N killed it, or -1 when it could not be started (with the reason on stderr). */
int spawn_self(char *const argv[]);

/* Set by SIGINT or SIGTERM once spawn_catch_signals ran: the orchestrating command lets the
 * stage in hand end (its child got the signal too, and saves) and then stops. */
extern volatile sig_atomic_t spawn_stop_requested;

/* Installs the SIGINT/SIGTERM handler that sets spawn_stop_requested. */
void spawn_catch_signals(void);

/* Returns 1 when path exists (file or folder). */
int spawn_exists(const char *path);

/* Creates the folder path unless it exists; on failure prints "cutkit COMMAND: cannot create
 * PATH: reason" and returns -1. */
int spawn_make_dir(const char *command, const char *path);

/* Stage markers: a finished stage leaves an empty file dir/name, written atomically.
 * spawn_marked says whether it is there; spawn_mark writes it (printing why not, as above). */
int spawn_marked(const char *dir, const char *name);
int spawn_mark(const char *command, const char *dir, const char *name);

/* Runs `cutkit train ARGS... --out RUN_DIR` (args NULL-terminated, at most 60) unless the
 * stage marker RUN_DIR/trained says it finished, resuming from RUN_DIR's checkpoints when it
 * has some (a fresh directory starts fresh), then writes the marker; returns 0, or -1 when the
 * training failed or a stop was requested. command names the caller in messages. */
int spawn_train(const char *command, const char *run_dir, char *const args[]);

#endif
