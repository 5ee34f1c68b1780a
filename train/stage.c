/* stage.c — cutkit's own commands as the child processes of a pipeline, markers, stop flag. */
#include "train/stage.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/parentdeath.h"
#include "util/subprocess.h"

/* Room for a path below a run directory. */
#define PATH_BUF 4200

static volatile sig_atomic_t stop_flag;

static void on_stop_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

const volatile sig_atomic_t *stage_catch_stop_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return &stop_flag;
}

int stage_stop_requested(const StageRunner *r) {
    return r->stop && *r->stop;
}

/* "cutkit eval mc" for messages: the command name and a subcommand word if one follows. */
static void command_name(char *const argv[], char *name, size_t size) {
    int sub = argv[0] && argv[1] && argv[1][0];
    for (const char *c = sub ? argv[1] : ""; *c; c++)
        if (!islower((unsigned char)*c)) sub = 0;
    snprintf(name, size, "cutkit %s%s%s", argv[0] ? argv[0] : "", sub ? " " : "",
             sub ? argv[1] : "");
}

int stage_run(const StageRunner *r, char *const argv[], CkError *err) {
    int n = 0;
    while (argv[n]) n++;
    char **full = calloc((size_t)n + 2, sizeof *full);
    if (!full) return ck_fail(err, "out of memory");
    full[0] = "cutkit"; /* the child sees itself as when a user runs it */
    for (int i = 0; i < n; i++) full[i + 1] = argv[i];
    char name[160];
    command_name(argv, name, sizeof name);
    /* the child dies with this process (util/parentdeath.h): a pipeline killed by SIGKILL
     * leaves no training running on in its directory */
    char **env = parentdeath_child_env(err);
    int status = env ? subprocess_call(r->binary, full, env, err) : -1;
    parentdeath_child_env_free(env);
    free(full);
    if (status < 0) return ck_wrap(err, "%s", name);
    if (status == 0) return 0;
    if (status > 128) return ck_fail(err, "'%s' was ended by signal %d", name, status - 128);
    return ck_fail(err, "'%s' exited with status %d", name, status);
}

int stage_marked(const char *dir, const char *name) {
    char path[PATH_BUF];
    return fileio_path(path, sizeof path, dir, name) == 0 && access(path, F_OK) == 0;
}

int stage_mark(const char *dir, const char *name, CkError *err) {
    char path[PATH_BUF];
    if (fileio_path(path, sizeof path, dir, name) != 0)
        return ck_fail(err, "%s: the path is too long", dir);
    return fileio_write_atomic(path, "", 0, err);
}

int stage_train(const StageRunner *r, const char *run_dir, char *const args[], CkError *err) {
    if (stage_marked(run_dir, "trained")) return 0;
    if (fileio_make_dirs(run_dir, err) != 0) return -1;
    char checkpoints[PATH_BUF];
    if (fileio_path(checkpoints, sizeof checkpoints, run_dir, "checkpoints") != 0)
        return ck_fail(err, "%s: the path is too long", run_dir);
    char *argv[64];
    int a = 0;
    argv[a++] = "train";
    for (int i = 0; args[i] && a < 60; i++) argv[a++] = args[i];
    argv[a++] = "--out";
    argv[a++] = (char *)run_dir;
    if (access(checkpoints, F_OK) == 0) argv[a++] = "--resume";
    argv[a] = NULL;
    if (stage_run(r, argv, err) != 0) return -1;
    if (stage_stop_requested(r)) return ck_fail(err, "stopped");
    return stage_mark(run_dir, "trained", err);
}
