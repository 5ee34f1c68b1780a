/* runlock.h — one writer per run directory: an exclusive lock that a second cutkit process
 * writing the same directory (or output file) is refused, and that the kernel drops when its
 * holder dies, so the lock of a killed process is taken over with nothing to clean up.
 *
 * The lock is flock(LOCK_EX | LOCK_NB) on DIR/.cutkit.lock, held on an fd kept open until
 * runlock_release or the end of the process. The file holds the holder's pid, only for the
 * message; it is left in place on release (removing it would let a new locker lock a file
 * that the next one no longer sees). The fd is close-on-exec, so spawned commands do not
 * inherit the lock: an orchestrator that holds OUT and spawns `cutkit train --out
 * OUT/iter-1/train` conflicts with nothing, but it must never lock the same directory that a
 * child it spawns will lock (the child would be refused). flock locks belong to an open file,
 * not to a process: a second runlock_acquire of the same directory in one process is refused
 * too (naming its own pid), and a fork()ed child that does not exec shares its parent's lock.
 *
 * Local file systems only. On NFS, Linux emulates flock with a whole-file POSIX lock through
 * the server (NFSv4, or lockd for v3), so two hosts do exclude each other when the mount has
 * locking; on a mount with -o nolock (and some FUSE or SMB mounts) the lock is local to one
 * machine and a writer on another host is not refused, and the pid in the message may name a
 * process of another host. cutkit does not detect this. */
#ifndef CK_RUNLOCK_H
#define CK_RUNLOCK_H

#include "util/ck_error.h"

/* The lock file's name inside a run directory. */
#define RUNLOCK_FILE ".cutkit.lock"

/* A held (or not held) lock; zero-initialize it (RunLock l = {0}). */
typedef struct {
    int fd;   /* the open lock file while held */
    int held; /* 1 from a successful acquire until release */
} RunLock;

/* Locks the run directory dir, which must exist, for this process: returns 0, or -1 with err
 * "DIR is in use by pid N" when another process (or another RunLock of this one) holds it
 * ("by another process" when the pid cannot be read), "run directory DIR does not exist",
 * or why the lock file cannot be created or written. Never waits. On success the caller
 * releases it with runlock_release, or leaves that to the exit of the process. */
int runlock_acquire(RunLock *l, const char *dir, CkError *err);

/* runlock_acquire for a command whose output is one file (model_outputs.json,
 * annotations.json): locks "DIR/.NAME.cutkit.lock" beside path = DIR/NAME (DIR must exist;
 * path need not), so that writers of two files in one folder do not exclude each other.
 * The message names path: "PATH is in use by pid N". */
int runlock_acquire_file(RunLock *l, const char *path, CkError *err);

/* Unlocks and closes; the lock file stays. Safe on a zeroed or already released RunLock. */
void runlock_release(RunLock *l);

#endif
