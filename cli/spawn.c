/* spawn.c — posix_spawn of /proc/self/exe, so the child is the very binary that runs. */
#include "cli/spawn.h"

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "util/fileio.h"

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

volatile sig_atomic_t spawn_stop_requested;

static void on_signal(int sig) {
    (void)sig;
    spawn_stop_requested = 1;
}

void spawn_catch_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int spawn_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int spawn_make_dir(const char *command, const char *path) {
    if (mkdir(path, 0777) == 0 || errno == EEXIST) return 0;
    fprintf(stderr, "cutkit %s: cannot create %s: %s\n", command, path, strerror(errno));
    return -1;
}

int spawn_marked(const char *dir, const char *name) {
    char path[4200];
    return fileio_path(path, sizeof path, dir, name) == 0 && spawn_exists(path);
}

int spawn_mark(const char *command, const char *dir, const char *name) {
    char path[4200];
    CkError err = {{0}};
    if (fileio_path(path, sizeof path, dir, name) != 0 ||
        fileio_write_atomic(path, "", 0, &err) != 0) {
        fprintf(stderr, "cutkit %s: %s\n", command, err.msg[0] ? err.msg : "path too long");
        return -1;
    }
    return 0;
}

int spawn_train(const char *command, const char *run_dir, char *const args[]) {
    if (spawn_marked(run_dir, "trained")) return 0;
    if (spawn_make_dir(command, run_dir) != 0) return -1;
    char checkpoints[4200];
    if (fileio_path(checkpoints, sizeof checkpoints, run_dir, "checkpoints") != 0) {
        fprintf(stderr, "cutkit %s: %s: path too long\n", command, run_dir);
        return -1;
    }
    char *argv[64];
    int a = 0;
    argv[a++] = "train";
    for (int i = 0; args[i] && a < 60; i++) argv[a++] = args[i];
    argv[a++] = "--out";
    argv[a++] = (char *)run_dir;
    if (spawn_exists(checkpoints)) argv[a++] = "--resume";
    argv[a] = NULL;
    if (spawn_self(argv) != 0 || spawn_stop_requested) return -1;
    return spawn_mark(command, run_dir, "trained");
}
