/* spawn.h — running cutkit's own commands as child processes, for the commands that
 * orchestrate others (align-online, sweep): each stage is a separate process with its own
 * resumable run directory, exactly what a user could run by hand. */
#ifndef CK_SPAWN_H
#define CK_SPAWN_H

/* Runs this cutkit binary with argv (argv[0] is the command name, NULL-terminated), with
 * stdin/stdout/stderr inherited, and waits. Returns the child's exit status, 128 + N when
 * signal N killed it, or -1 when it could not be started (with the reason on stderr). */
int spawn_self(char *const argv[]);

#endif
