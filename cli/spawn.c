/* spawn.c — posix_spawn of /proc/self/exe, so the child is the very binary that runs. */
#include "spawn.h"

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

extern char **environ;

int spawn_self(char *const argv[]) {
    int n = 0;
    while (argv[n]) n++;
    char **full = calloc((size_t)n + 2, sizeof(char *));
    if (!full) {
        fprintf(stderr, "cutkit: out of memory\n");
        return -1;
    }
    full[0] = "cutkit";
    for (int i = 0; i < n; i++) full[i + 1] = argv[i];
    pid_t pid;
    int rc = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, full, environ);
    free(full);
    if (rc != 0) {
        fprintf(stderr, "cutkit: cannot start 'cutkit %s': %s\n", argv[0], strerror(rc));
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "cutkit: waiting for 'cutkit %s': %s\n", argv[0], strerror(errno));
            return -1;
        }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}
