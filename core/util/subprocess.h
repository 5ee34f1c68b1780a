/* subprocess.h — run an external command with data on its stdin and capture its stdout, or
 * run a program in the foreground (subprocess_call: cutkit's own commands as pipeline steps).
 *
 * Used by judges that call out to another program (`cutkit eval judge --judge command`, the
 * online loop's external judgment command). The data the command works on (instructions,
 * responses: untrusted text) only ever travels through the command's stdin, never through
 * its command line, so no quoting of that text can go wrong.
 *
 * subprocess_run executes argv directly (execvp, no shell). subprocess_run_shell runs a
 * command string the *user* wrote through `/bin/sh -c`, so that pipes, quoting and
 * arguments work as on a terminal; the string is passed as-is and never combined with data.
 *
 * Both start the command in its own process group; on a timeout the whole group gets
 * SIGKILL (a shell script's children too), and the call waits for it before returning.
 * subprocess_call instead keeps the caller's process group and terminal: a Ctrl-C reaches the
 * child, which is how a pipeline's training child saves its checkpoint before stopping. */
#ifndef CK_SUBPROCESS_H
#define CK_SUBPROCESS_H

#include <stddef.h>

#include "util/ck_error.h"

typedef struct {
    double timeout_seconds; /* wall-clock limit for the whole run; <= 0: none */
    size_t max_output;      /* stdout bytes accepted; more fails the run (0: 64 MiB) */
} SubprocessOptions;

/* Runs argv (argv[0] looked up in PATH, NULL-terminated) with input[0..input_len) on its stdin
 * (then closed), and returns 0 when it exits with status 0 in time, with its stdout in *out
 * (malloc'd, NUL-terminated, caller frees; length in *out_len when non-NULL). Otherwise
 * returns -1, *out NULL, and err names the command, then what happened (exit status N,
 * killed by signal N, timed out after T s, could not start) and the tail of its stderr. A
 * command that does not read its stdin is not an error. */
int subprocess_run(char *const argv[], const char *input, size_t input_len,
                   const SubprocessOptions *opt, char **out, size_t *out_len, CkError *err);

/* subprocess_run of {"/bin/sh", "-c", command}: command is the user's own shell command
 * line, run as written. */
int subprocess_run_shell(const char *command, const char *input, size_t input_len,
                         const SubprocessOptions *opt, char **out, size_t *out_len, CkError *err);

/* Runs program (a path, not looked up in PATH) with argv (argv[0] is the name it sees,
 * NULL-terminated) and envp (NULL: this process's environment) with this process's stdin,
 * stdout, stderr and process group, so that it talks to the terminal and a Ctrl-C reaches it
 * too, and waits for it (through EINTR). Returns its exit status, 128 + N when signal N ended
 * it, or -1 with err naming the program when it could not be started or waited for. For
 * running cutkit's own commands as the steps of a pipeline (train/stage.h); untrusted data
 * never goes through argv here. */
int subprocess_call(const char *program, char *const argv[], char *const envp[], CkError *err);

#endif
