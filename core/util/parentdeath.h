/* parentdeath.h — a spawned cutkit command dies with the command that spawned it.
 *
 * When an orchestrator (align-online, sweep, demo) is SIGKILLed, by the OOM killer say, its
 * `cutkit train` child would run on, and a rerun would start a second trainer in the same
 * directory. Linux's PR_SET_PDEATHSIG asks the kernel to send this process SIGTERM when its
 * parent dies; cutkit train treats SIGTERM as a stop: it finishes the update, saves and exits.
 *
 * posix_spawn runs no code in the child before exec, so the child arms itself at startup:
 * the spawner passes its pid in CUTKIT_PARENT_PID (parentdeath_child_env) and main() calls
 * parentdeath_arm_from_env. A parent that died between the spawn and the arming is caught by
 * comparing getppid() after arming.
 *
 * Caveats. The signal is sent when the *thread* that created the child ends, not the whole
 * process: spawn from the main thread (as cli/spawn.c does), never from a worker thread
 * (an OpenMP or pool thread that ends would kill the child). The setting survives execve
 * (blas_env's re-exec) but not fork: the armed command's own children (a judge command)
 * are not armed. Elsewhere than Linux these functions do nothing and succeed. */
#ifndef CK_PARENTDEATH_H
#define CK_PARENTDEATH_H

#include <sys/types.h>

#include "util/ck_error.h"

/* The environment variable through which a spawner passes its pid to the child. */
#define PARENTDEATH_ENV "CUTKIT_PARENT_PID"

/* Arms this process to get SIGTERM when its parent dies, then checks that its parent is still
 * expected_parent. Returns 0, or -1 with err when the parent has already exited (this
 * process was reparented before it could arm; the caller should exit at once) or the kernel
 * refused; on -1 nothing stays armed. Call it in the child, right after fork or at startup. */
int parentdeath_arm(pid_t expected_parent, CkError *err);

/* Arms from CUTKIT_PARENT_PID: does nothing and returns 0 when it is unset or empty (a
 * command the user started); otherwise removes it from the environment (so that this
 * process's own children never see a value meant for it) and calls parentdeath_arm with
 * it. A value that is not a pid fails, naming the variable. Call it first thing in main(),
 * before any thread starts (it modifies the environment). */
int parentdeath_arm_from_env(CkError *err);

/* Returns a copy of environ for a child about to be spawned, with CUTKIT_PARENT_PID set to
 * this process's pid (an inherited value replaced), for posix_spawn's envp; the parent's
 * own environment is untouched. The strings are environ's own, except the one this adds:
 * free the result with parentdeath_child_env_free, before environ changes. NULL (err
 * filled) when out of memory. */
char **parentdeath_child_env(CkError *err);

/* Releases a parentdeath_child_env result (NULL is fine). */
void parentdeath_child_env_free(char **env);

#endif
