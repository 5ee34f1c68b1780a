/* demo_seeds.c — the seeds of a multi-seed demo as child demos, several at once. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "reports/demo/demo_internal.h"
#include "util/fileio.h"
#include "util/parentdeath.h"
#include "util/threads.h"
#include "util/timer.h"

#define PATH_BUF 4096
/* The lines of a failed seed's log shown in the demo's own log. */
#define TAIL_LINES 8

/* One seed's child: its folder, log and process (0 before it starts and after it ends). */
typedef struct {
    char dir[PATH_BUF], log[PATH_BUF];
    pid_t pid;
    double started;
} SeedChild;

static void log_msg(const DemoOptions *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void log_msg(const DemoOptions *o, const char *fmt, ...) {
    if (!o->log) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(o->log, fmt, ap);
    va_end(ap);
}

/* Starts `cutkit demo --seed S --no-report --out DIR` for seed i with its stdout and stderr
 * appended to DIR/demo.log (two children writing to one terminal would interleave their
 * progress lines). The child dies with this process (util/parentdeath.h). */
static int start_seed(const DemoOptions *o, int i, SeedChild *c, CkError *err) {
    if (fileio_make_dirs(c->dir, err) != 0) return -1;
    char seed[32], threads[32], misconception[64];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seeds[i]);
    snprintf(threads, sizeof threads, "%d", o->threads);
    /* the shortest of 15 and 17 digits that reads back as the same double */
    snprintf(misconception, sizeof misconception, "%.15g", o->misconception);
    if (strtod(misconception, NULL) != o->misconception)
        snprintf(misconception, sizeof misconception, "%.17g", o->misconception);
    char *argv[] = {"cutkit",
                    "demo",
                    "--seed",
                    seed,
                    "--no-report",
                    "--out",
                    c->dir,
                    "--size",
                    (char *)demo_size_name(o->size),
                    "--misconception",
                    misconception,
                    "--threads",
                    threads,
                    NULL};
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0) return ck_fail(err, "out of memory");
    int rc = posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, c->log,
                                              O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (rc == 0) rc = posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    char **env = rc == 0 ? parentdeath_child_env(err) : NULL;
    if (rc == 0 && env) rc = posix_spawn(&c->pid, o->runner.binary, &fa, NULL, argv, env);
    parentdeath_child_env_free(env);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return ck_fail(err, "cannot start the demo of seed %s: %s", seed, strerror(rc));
    if (!env) return -1;
    c->started = timer_seconds();
    log_msg(o, "seed %s: running (its log: %s)\n", seed, c->log);
    return 0;
}

/* The last TAIL_LINES lines of a seed's log in the demo's log: why it failed. */
static void show_tail(const DemoOptions *o, const SeedChild *c) {
    CkError ignored = {{0}};
    size_t n = 0;
    char *text = fileio_read_text(c->log, (size_t)1 << 26, &n, &ignored);
    if (!text) return;
    size_t start = n, lines = 0;
    while (start > 0 && lines <= TAIL_LINES)
        if (text[--start] == '\n' && start + 1 < n) lines++;
    log_msg(o, "%s", text + (lines > TAIL_LINES ? start + 1 : start));
    free(text);
}

/* Waits for one child to end; returns its index in c[0..n), or -1 when none is running. On a
 * stop request every running child is sent SIGTERM once: a demo stops after its step in
 * hand, which saves its checkpoint. */
static int wait_one(const DemoOptions *o, SeedChild *c, int n, int *status, int *forwarded) {
    for (;;) {
        int running = 0;
        for (int i = 0; i < n; i++) running += c[i].pid > 0;
        if (!running) return -1;
        if (stage_stop_requested(&o->runner) && !*forwarded) {
            for (int i = 0; i < n; i++)
                if (c[i].pid > 0) kill(c[i].pid, SIGTERM);
            *forwarded = 1;
        }
        pid_t pid = waitpid(-1, status, 0);
        if (pid < 0 && errno != EINTR) return -1;
        for (int i = 0; pid > 0 && i < n; i++)
            if (c[i].pid == pid) {
                c[i].pid = 0;
                return i;
            }
    }
}

/* Reports how seed i's child ended; 1 when it failed (not when it stopped on request). */
static int seed_ended(const DemoOptions *o, int i, const SeedChild *c, int status) {
    const int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok && stage_stop_requested(&o->runner)) {
        log_msg(o, "seed %llu: stopped; rerun to resume\n", (unsigned long long)o->seeds[i]);
        return 0;
    }
    if (ok) {
        log_msg(o, "seed %llu: done in %.0f s\n", (unsigned long long)o->seeds[i],
                timer_seconds() - c->started);
        return 0;
    }
    log_msg(o, "seed %llu: %s %d; the end of %s:\n", (unsigned long long)o->seeds[i],
            WIFSIGNALED(status) ? "ended by signal" : "exited with status",
            WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), c->log);
    show_tail(o, c);
    return 1;
}

int demo_seeds_run(const DemoOptions *o, CkError *err) {
    const int n = o->n_seeds;
    /* by default every seed at once, up to two per core: three single-threaded seeds on two
     * cores take about 1.5 seeds' time, where two at a time would take two */
    int jobs = o->jobs > 0 ? o->jobs : 2 * threads_available();
    if (jobs < 1) jobs = 1;
    SeedChild *c = calloc((size_t)n, sizeof *c);
    if (!c) return ck_fail(err, "out of memory");
    int rc = 0, failed = 0, next = 0, running = 0, forwarded = 0, status, done;
    for (int i = 0; rc == 0 && i < n; i++) {
        if (demo_seed_dir(o, i, c[i].dir, sizeof c[i].dir) != 0 ||
            fileio_path(c[i].log, sizeof c[i].log, c[i].dir, "demo.log") != 0)
            rc = ck_fail(err, "%s: the path is too long", o->out);
    }
    for (;;) {
        /* start seeds while there is a free job, no error and no stop */
        while (rc == 0 && next < n && running < jobs && !stage_stop_requested(&o->runner)) {
            rc = start_seed(o, next, &c[next], err);
            running += rc == 0;
            next++;
        }
        if ((done = wait_one(o, c, n, &status, &forwarded)) < 0) break;
        running--;
        failed += seed_ended(o, done, &c[done], status);
    }
    free(c);
    if (rc != 0) return -1;
    if (stage_stop_requested(&o->runner)) return ck_fail(err, "stopped");
    if (failed) return ck_fail(err, "%d of %d seeds failed (their logs say why)", failed, n);
    return 0;
}
