/* outdir.h — opening a run directory for writing: created with its parents, locked for this
 * process (runlock.h), and rid of the temporary files that killed writers left in it.
 *
 * Every cutkit command that writes a run directory opens it through outdir_open before it
 * cleans or writes anything there, so that a second writer is refused at once ("DIR is in
 * use by pid N") and the "<name>.tmp-<pid>" files of an AtomicFile (fileio.h) whose process
 * was killed do not pile up. Under mpirun only rank 0 opens (and locks) the directory. */
#ifndef CK_OUTDIR_H
#define CK_OUTDIR_H

#include "util/ck_error.h"
#include "util/runlock.h"

/* Creates dir and its missing parents, locks it into *lock (runlock_acquire) and removes the
 * stale temporary files in it (outdir_remove_stale_temps). Returns 0, or -1 with err (the
 * directory cannot be created, or "DIR is in use by pid N"); nothing is removed unless the
 * lock was taken. The caller releases the lock with runlock_release, or leaves that to the end
 * of the process. */
int outdir_open(RunLock *lock, const char *dir, CkError *err);

/* For a command whose output is one file (model_outputs.json, annotations.json): creates the
 * folder that holds path (and its parents), locks path (runlock_acquire_file: writers of two
 * files in one folder do not exclude each other) and removes the stale temporary files of
 * path (fileio_remove_stale_temps). Returns 0, or -1 with err ("PATH is in use by pid N"). */
int outdir_open_file(RunLock *lock, const char *path, CkError *err);

/* Removes the regular files "NAME.tmp-PID" directly in dir (not below it) whose process PID
 * no longer runs: what an AtomicFile of a killed process leaves. The current process's own,
 * and those of a process that still runs, are kept; a missing or unreadable dir is fine. */
void outdir_remove_stale_temps(const char *dir);

#endif
