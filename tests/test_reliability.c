/* test_reliability.c — run directories that survive concurrency, kills, full disks and orphans
 * (issue 17), with the real binary, real processes and real signals; every wait is bounded:
 *   - a second `cutkit train --resume` on a directory in use is refused naming the holder's
 *     pid, the logs stay whole, and the lock of a SIGKILLed trainer is taken over;
 *   - every pipeline that writes a run directory refuses one that is locked, before it writes;
 *   - SIGKILL of align-online ends its `cutkit train` child within seconds, and a rerun
 *     resumes and completes;
 *   - SIGKILL at random moments of `--resume` (which rewrites steps.jsonl and tokens.csv)
 *     loses no line and no header, a torn last line is dropped, and the killed runs'
 *     temporary files are removed;
 *   - a log that cannot be written (a full tmpfs, or RLIMIT_FSIZE where mounting is not
 *     allowed) stops the run with exit 1 naming the file and the last good checkpoint, and a
 *     resume once there is room logs every update once;
 *   - flag combinations that can never run exit 2 (train, eval mc). */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/test_util.h"

#include "analysis/contrast_pipeline.h"
#include "datasets/synth.h"
#include "eval/generate_run.h"
#include "eval/judge_run.h"
#include "eval/mc_run.h"
#include "reports/demo/demo.h"
#include "train/online_run.h"
#include "train/sweep.h"
#include "train/train_run.h"
#include "util/runlock.h"

#define MAX_ARGS 48

static const char *STORY =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
    "park. One day, she saw a big, red ball. She wanted to play with it, but it was too high. "
    "Tom had a red car. He liked to drive it fast around the garden with his dog.\n";

/* Every test works in a fresh temporary folder (stories.txt and a small synthetic world in
 * it), removed afterwards even when it fails. */
static int make_temp(void **state) {
    char *dir = test_temp_dir();
    if (!dir) return -1;
    *state = dir;
    char path[1024];
    snprintf(path, sizeof path, "%s/stories.txt", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    for (int i = 0; i < 8; i++) fputs(STORY, f);
    fclose(f);
    SynthOptions o = synth_default_options();
    o.n_train = o.n_test = o.n_warmup = 24;
    SynthWorld w;
    CkError err = {{0}};
    snprintf(path, sizeof path, "%s/world", dir);
    if (mkdir(path, 0777) != 0 || synth_generate(&w, &o, &err) != 0) return -1;
    const int rc = synth_write(&w, path, &err);
    synth_world_free(&w);
    return rc;
}

static int remove_temp(void **state) {
    char mnt[1100];
    snprintf(mnt, sizeof mnt, "%s/disk", (const char *)*state);
    umount2(mnt, MNT_DETACH); /* the full-disk test's tmpfs, when it failed before unmounting */
    int rc = test_remove_dir(*state);
    free(*state);
    return rc;
}

/* dir + "/" + rel, in one of a few rotating buffers (enough for one call's arguments). */
static const char *in(const char *dir, const char *rel) {
    static char bufs[32][1200];
    static int next;
    char *b = bufs[next++ % 32];
    const int n = snprintf(b, sizeof bufs[0], "%s/%s", dir, rel);
    assert_true(n > 0 && (size_t)n < sizeof bufs[0]);
    return b;
}

/* ---- processes ---------------------------------------------------------------------------- */

/* Starts `cutkit ARGS...` (NULL-terminated) with stderr into err_path; fsize > 0 limits every
 * file it writes to fsize bytes (RLIMIT_FSIZE, with SIGXFSZ ignored so that the write fails
 * with EFBIG instead of killing it). Returns its pid. */
static pid_t spawn_cutkit(const char *const args[], const char *err_path, rlim_t fsize) {
    const char *argv[MAX_ARGS + 2];
    int n = 0;
    argv[n++] = CUTKIT_BINARY;
    while (args[n - 1] && n < MAX_ARGS) argv[n] = args[n - 1], n++;
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 2) < 0) _exit(126);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) dup2(null, 1);
        if (fsize > 0) {
            signal(SIGXFSZ, SIG_IGN); /* an ignored disposition survives exec */
            struct rlimit rl = {fsize, fsize};
            if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(126);
        }
        execv(CUTKIT_BINARY, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Waits up to ms milliseconds for the child pid: 0 with its status, or -1 (still running). */
static int wait_within(pid_t pid, int ms, int *status) {
    for (int t = 0; t <= ms; t += 10) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid) return 0;
        if (r < 0 && errno != EINTR) return -1;
        usleep(10 * 1000);
    }
    return -1;
}

/* Ends the child pid (SIGKILL) and reaps it. */
static void kill_child(pid_t pid) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Runs `cutkit ARGS...` to its end within ms; returns its exit status (-1: killed by a
 * signal), its stderr in *err (malloc'd; may be NULL). Fails the test on a timeout. */
static int run_cutkit(const char *dir, const char *const args[], int ms, rlim_t fsize, char **err) {
    const char *err_path = in(dir, "stderr.txt");
    pid_t pid = spawn_cutkit(args, err_path, fsize);
    int status = 0;
    if (wait_within(pid, ms, &status) != 0) {
        kill_child(pid);
        char *text = test_read_file(err_path, NULL);
        printf("`cutkit %s ...` still ran after %d ms; stderr:\n%s\n", args[0], ms,
               text ? text : "");
        free(text);
        fail();
    }
    char *text = test_read_file(err_path, NULL);
    if (err)
        *err = text;
    else
        free(text);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Polls (every 10 ms, up to ms) until path exists and holds at least min_lines newlines. */
static int wait_for_lines(const char *path, int min_lines, int ms) {
    for (int t = 0; t <= ms; t += 10) {
        char *text = test_read_file(path, NULL);
        int lines = 0;
        for (const char *p = text; p && (p = strchr(p, '\n')); p++) lines++;
        free(text);
        if (lines >= min_lines) return 0;
        usleep(10 * 1000);
    }
    return -1;
}

/* The pid written in a run directory's lock file, or 0. */
static long lock_holder(const char *run_dir) {
    char *text = test_read_file(in(run_dir, RUNLOCK_FILE), NULL);
    long pid = text ? strtol(text, NULL, 10) : 0;
    free(text);
    return pid;
}

/* The pid of a process that has ended (a child run to its end and reaped). */
static long dead_pid(void) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(0);
    waitpid(pid, NULL, 0);
    return (long)pid;
}

/* ---- run directories -------------------------------------------------------------------- */

/* The step of run_dir's newest checkpoint (its checkpoints/latest), or 0. */
static long latest_checkpoint(const char *run_dir) {
    char *text = test_read_file(in(run_dir, "checkpoints/latest"), NULL);
    long step = text && !strncmp(text, "checkpoint-", 11) ? strtol(text + 11, NULL, 10) : 0;
    free(text);
    return step;
}

/* Checks steps.jsonl of run_dir: its complete lines are JSON objects of steps 1, 2, 3, ...
 * (no step twice, none missing); a torn last line is accepted only when allow_torn. Returns
 * the number of complete lines. */
static int check_steps(const char *run_dir, int allow_torn) {
    size_t size = 0;
    char *text = test_read_file(in(run_dir, "steps.jsonl"), &size);
    assert_non_null(text);
    int n = 0;
    char *line = text;
    for (char *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        cJSON *obj = cJSON_Parse(line);
        const cJSON *step = cJSON_GetObjectItemCaseSensitive(obj, "step");
        if (!cJSON_IsNumber(step) || step->valueint != n + 1)
            printf("steps.jsonl line %d: expected step %d: %s\n", n + 1, n + 1, line);
        assert_true(cJSON_IsNumber(step));
        assert_int_equal(step->valueint, n + 1);
        cJSON_Delete(obj);
        n++;
    }
    if (!allow_torn) assert_string_equal(line, "");
    free(text);
    return n;
}

/* Checks tokens.csv of run_dir: the header first, then complete rows of 7 fields whose step
 * never decreases and is at most max_step; a torn last row only when allow_torn. */
static void check_tokens(const char *run_dir, int max_step, int allow_torn) {
    char *text = test_read_file(in(run_dir, "tokens.csv"), NULL);
    assert_non_null(text);
    const char *header = "step,example,position,token,log_pa,log_pm,flagged\n";
    assert_memory_equal(text, header, strlen(header));
    long last = 0;
    char *line = text + strlen(header);
    for (char *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        int commas = 0;
        for (const char *c = line; *c; c++) commas += *c == ',';
        assert_int_equal(commas, 6);
        long step = strtol(line, NULL, 10);
        assert_true(step >= last && step >= 1 && step <= max_step);
        last = step;
    }
    if (!allow_torn) assert_string_equal(line, "");
    free(text);
}

/* Fails the test when dir holds a "*.tmp-PID" file. */
static void assert_no_temps(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strstr(e->d_name, ".tmp-")) printf("left in %s: %s\n", dir, e->d_name);
        assert_null(strstr(e->d_name, ".tmp-"));
    }
    closedir(d);
}

/* `cutkit report RUN` accepts the run directory. */
static void assert_report_accepts(const char *dir, const char *run_dir) {
    const char *args[] = {"report", run_dir, "--out", in(dir, "report"), NULL};
    char *err = NULL;
    const int status = run_cutkit(dir, args, 60000, 0, &err);
    if (status != 0) printf("cutkit report: exit %d\n%s\n", status, err);
    assert_int_equal(status, 0);
    free(err);
}

/* ---- 1. one writer per run directory ---------------------------------------------------- */

/* `cutkit train` on stories.txt into run (NULL-terminated after the extra arguments). */
#define TRAIN_ARGS(dir, run)                                                                       \
    "train", "--data", in(dir, "stories.txt"), "--out", run, "--steps", "100000", "--warmup", "0", \
        "--save-every", "10", "--batch-size", "4", "--seq-len", "64", "--threads", "1"

static void test_second_trainer_is_refused_and_a_dead_ones_lock_taken_over(void **state) {
    const char *dir = *state;
    char run[1100];
    snprintf(run, sizeof run, "%s/runs/a", dir); /* the parent folder does not exist yet */
    const char *first[] = {TRAIN_ARGS(dir, run), NULL};
    pid_t a = spawn_cutkit(first, in(dir, "a.txt"), 0);
    if (wait_for_lines(in(run, "checkpoints/latest"), 1, 60000) != 0) {
        kill_child(a);
        fail_msg("the first trainer wrote no checkpoint");
    }
    /* the second writer: refused at once, naming the first */
    const char *second[] = {TRAIN_ARGS(dir, run), "--resume", NULL};
    char *err = NULL;
    const int status = run_cutkit(dir, second, 20000, 0, &err);
    char expected[1300];
    snprintf(expected, sizeof expected, "cutkit train: %s is in use by pid %ld", run, (long)a);
    if (status != 1 || !strstr(err, expected)) printf("exit %d, stderr:\n%s\n", status, err);
    free(err);
    kill_child(a); /* as the OOM killer does: the lock goes with the process */
    assert_int_equal(status, 1);
    check_steps(run, 1);
    /* the dead holder's lock is taken over; the run resumes and its logs stay whole */
    const long step = latest_checkpoint(run);
    assert_true(step >= 10);
    char stop[32];
    snprintf(stop, sizeof stop, "%ld", step + 3);
    const char *resume[] = {TRAIN_ARGS(dir, run), "--resume", "--stop-after", stop, NULL};
    assert_int_equal(run_cutkit(dir, resume, 60000, 0, &err), 0);
    assert_non_null(strstr(err, "resuming from"));
    free(err);
    assert_int_equal(check_steps(run, 0), step + 3);
    assert_report_accepts(dir, run);
}

/* Each pipeline that writes a run directory (or, for eval generate and judge, an output file)
 * refuses one that another writer holds, before it writes anything there. The holder is this
 * process (a second lock of one directory is refused within a process too). */
static void test_every_pipeline_refuses_a_locked_directory(void **state) {
    const char *dir = *state;
    char out[1100], expected[1300];
    snprintf(out, sizeof out, "%s/locked", dir);
    assert_int_equal(mkdir(out, 0777), 0);
    RunLock held = {0};
    CkError err = {{0}};
    assert_int_equal(runlock_acquire(&held, out, &err), 0);
    snprintf(expected, sizeof expected, "%s is in use by pid %ld", out, (long)getpid());

    TrainRunOptions t;
    train_run_options_init(&t);
    t.data = in(dir, "stories.txt");
    t.out = out;
    t.steps = 1;
    t.warmup = 0;
    TrainReport tr;
    assert_int_equal(train_run(&t, &tr, &err), -1);
    assert_string_equal(err.msg, expected);

    McRunOptions m;
    mc_run_options_init(&m);
    assert_int_equal(mc_tasks_parse("arc_easy", m.tasks, MC_TASK_COUNT, &m.n_tasks, &err), 0);
    m.out = out;
    m.limit = 1;
    McRunReport mr;
    assert_int_equal(mc_run(&m, &mr, &err), -1);
    assert_string_equal(err.msg, expected);

    ContrastPipelineOptions c = contrast_pipeline_defaults();
    c.judgments = in(dir, "world/test.jsonl");
    c.template_path = in(dir, "world/template.json");
    c.limit = 1;
    c.plots = "none";
    c.out = out;
    ContrastPipelineResult cr;
    assert_int_equal(contrast_pipeline_run(&c, &cr, &err), -1);
    assert_string_equal(err.msg, expected);
    contrast_pipeline_result_free(&cr);

    OnlineRunOptions o;
    online_run_options_init(&o);
    o.instructions = in(dir, "world/instructions.json");
    o.out = out;
    OnlineJudge judge;
    assert_int_equal(online_judge_open(&judge, "synth", 10, &err), 0);
    o.judge = &judge;
    o.runner.binary = CUTKIT_BINARY;
    OnlineRunResult orr;
    assert_int_equal(online_run(&o, &orr, &err), -1);
    online_judge_close(&judge);
    assert_string_equal(err.msg, expected);

    const char *spec_text = "{\"grid\": {\"lr\": [0.1]}}";
    assert_int_equal(test_write_file(in(dir, "spec.json"), spec_text, strlen(spec_text)), 0);
    SweepSpec spec;
    assert_int_equal(sweep_spec_load(&spec, in(dir, "spec.json"), &err), 0);
    SweepOptions s;
    sweep_options_init(&s);
    s.out = out;
    s.runner.binary = CUTKIT_BINARY;
    SweepResult sr;
    assert_int_equal(sweep_run(&s, &spec, &sr, &err), -1);
    sweep_spec_free(&spec);
    assert_string_equal(err.msg, expected);

    DemoOptions d;
    demo_options_init(&d);
    d.out = out;
    d.size = DEMO_SMALL;
    d.runner.binary = CUTKIT_BINARY;
    assert_int_equal(demo_run(&d, &err), -1);
    assert_string_equal(err.msg, expected);

    /* commands whose output is one file lock that file */
    const char *file = in(dir, "locked/outputs.json");
    RunLock held_file = {0};
    assert_int_equal(runlock_acquire_file(&held_file, file, &err), 0);
    snprintf(expected, sizeof expected, "%s is in use by pid %ld", file, (long)getpid());
    GenerateRunOptions g;
    generate_run_options_init(&g);
    g.instructions = in(dir, "world/instructions.json");
    g.out = file;
    g.limit = 1;
    GenerateRunReport gr;
    assert_int_equal(generate_run(&g, &gr, &err), -1);
    assert_string_equal(err.msg, expected);
    const char *records = "[{\"instruction\": \"Say hi.\", \"output\": \"Hi.\"}]";
    assert_int_equal(test_write_file(in(dir, "model.json"), records, strlen(records)), 0);
    JudgeRunOptions j;
    judge_run_options_init(&j);
    j.kind = JUDGE_KIND_SYNTH;
    j.outputs = j.reference = in(dir, "model.json");
    j.out = file;
    JudgeRunReport jr;
    assert_int_equal(judge_run(&j, &jr, &err), -1);
    assert_string_equal(err.msg, expected);
    runlock_release(&held_file);
    runlock_release(&held);
    /* nothing was written into the locked folder */
    DIR *dd = opendir(out);
    struct dirent *e;
    while ((e = readdir(dd))) {
        if (e->d_name[0] == '.') continue; /* ., .., the lock files */
        printf("written into the locked folder: %s\n", e->d_name);
        fail();
    }
    closedir(dd);
}

/* ---- 2. a pipeline's children die with it ----------------------------------------------- */

static void become_subreaper(int on) {
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, on, 0, 0, 0), 0);
}

static void test_killed_align_online_takes_its_trainer_along(void **state) {
    const char *dir = *state;
    char out[1100], train_dir[1200];
    snprintf(out, sizeof out, "%s/online", dir);
    snprintf(train_dir, sizeof train_dir, "%s/iter-1/train", out);
    const char *args[] = {"align-online",
                          "--instructions",
                          in(dir, "world/instructions.json"),
                          "--template",
                          in(dir, "world/template.json"),
                          "--out",
                          out,
                          "--iterations",
                          "1",
                          "--per-iteration",
                          "4",
                          "--max-tokens",
                          "16",
                          "--steps",
                          "600",
                          "--batch-size",
                          "2",
                          "--threads",
                          "1",
                          NULL};
    /* the orphaned trainer is reparented to this process, which can then wait for it */
    become_subreaper(1);
    pid_t online = spawn_cutkit(args, in(dir, "online.txt"), 0);
    if (wait_for_lines(in(train_dir, "steps.jsonl"), 3, 60000) != 0) {
        kill_child(online);
        become_subreaper(0);
        fail_msg("the trainer of align-online did not start");
    }
    const pid_t trainer = (pid_t)lock_holder(train_dir);
    assert_true(trainer > 0 && trainer != online);
    kill_child(online);
    int status = 0;
    const int ended = wait_within(trainer, 5000, &status);
    if (ended != 0) {
        printf("the trainer (pid %ld) still runs 5 s after its align-online was killed\n",
               (long)trainer);
        kill_child(trainer);
    }
    become_subreaper(0);
    assert_int_equal(ended, 0);
    /* SIGTERM from the kernel: it saved a checkpoint and stopped */
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(latest_checkpoint(train_dir) > 0);
    /* the rerun resumes that training and completes */
    char *err = NULL;
    status = run_cutkit(dir, args, 120000, 0, &err);
    if (status != 0) printf("rerun: exit %d\n%s\n", status, err);
    assert_int_equal(status, 0);
    assert_non_null(strstr(err, "resuming from"));
    free(err);
    assert_int_equal(check_steps(train_dir, 0), 600);
}

/* ---- 3. a kill at any moment of --resume ---------------------------------------------- */

/* CUT training on the world's judgments into run (tokens.csv grows by a row per Misalign
 * token of every update). */
#define CUT_ARGS(dir, run)                                                                         \
    "train", "--objective", "cut", "--judgments", in(dir, "world/train.jsonl"), "--template",      \
        in(dir, "world/template.json"), "--out", run, "--steps", "1000", "--warmup", "0",          \
        "--batch-size", "4", "--seq-len", "128", "--lora", "--lora-r", "2", "--save-every", "5",   \
        "--threads", "1"

static void test_kills_during_resume_lose_nothing(void **state) {
    const char *dir = *state;
    char run[1100], stop[32];
    snprintf(run, sizeof run, "%s/cut", dir);
    const char *first[] = {CUT_ARGS(dir, run), "--stop-after", "30", NULL};
    assert_int_equal(run_cutkit(dir, first, 120000, 0, NULL), 0);
    const unsigned seed = (unsigned)time(NULL);
    printf("kill delays seeded with %u\n", seed);
    srand(seed);
    for (int i = 0; i < 20; i++) {
        const long step = latest_checkpoint(run);
        snprintf(stop, sizeof stop, "%ld", step + 1);
        const char *resume[] = {CUT_ARGS(dir, run), "--resume", "--stop-after", stop, NULL};
        pid_t pid = spawn_cutkit(resume, in(dir, "resume.txt"), 0);
        usleep((useconds_t)(rand() % 301) * 1000);
        kill_child(pid);
        /* whatever the moment: the logs hold every update up to the checkpoint, the header
         * first, at most a torn last line */
        assert_true(check_steps(run, 1) >= latest_checkpoint(run));
        check_tokens(run, (int)latest_checkpoint(run) + 2, 1);
    }
    /* a torn last line (no newline) in each log is dropped by the next resume */
    FILE *f = fopen(in(run, "steps.jsonl"), "a");
    fputs("{\"step\": 9999, \"loss\": 1.", f);
    fclose(f);
    f = fopen(in(run, "tokens.csv"), "a");
    fputs("9999,0,3,17", f);
    fclose(f);
    /* the temporary files of killed writers are removed by the next run */
    const long gone = dead_pid();
    char name[64];
    const char *stale[] = {"steps.jsonl", "tokens.csv", "config.json", "checkpoints/latest"};
    for (int k = 0; k < 4; k++) {
        snprintf(name, sizeof name, "%s.tmp-%ld", stale[k], gone);
        assert_int_equal(test_write_file(in(run, name), "x", 1), 0);
    }
    const long step = latest_checkpoint(run);
    snprintf(stop, sizeof stop, "%ld", step + 2);
    const char *resume[] = {CUT_ARGS(dir, run), "--resume", "--stop-after", stop, NULL};
    assert_int_equal(run_cutkit(dir, resume, 120000, 0, NULL), 0);
    assert_int_equal(check_steps(run, 0), step + 2);
    check_tokens(run, (int)step + 2, 0);
    assert_no_temps(run);
    assert_no_temps(in(run, "checkpoints"));
    assert_report_accepts(dir, run);
    /* a resumed run whose tokens.csv is gone starts a new one with its header */
    assert_int_equal(unlink(in(run, "tokens.csv")), 0);
    snprintf(stop, sizeof stop, "%ld", step + 3);
    const char *again[] = {CUT_ARGS(dir, run), "--resume", "--stop-after", stop, NULL};
    assert_int_equal(run_cutkit(dir, again, 120000, 0, NULL), 0);
    check_tokens(run, (int)step + 3, 0);
}

/* ---- 4. a full disk ------------------------------------------------------------------- */

/* LoRA on the smallest adapter, so that the checkpoints stay far below the logs' limit. */
#define SMALL_ARGS(dir, run)                                                                       \
    "train", "--data", in(dir, "stories.txt"), "--out", run, "--steps", "300", "--warmup", "0",    \
        "--save-every", "40", "--batch-size", "2", "--seq-len", "48", "--lora", "--lora-r", "1",   \
        "--lora-targets", "q_proj", "--threads", "1"

/* Fills the file system of dir: writes dir/filler until a write fails; returns 0 when it ended
 * full (ENOSPC). */
static int fill_up(const char *dir) {
    int fd = open(in(dir, "filler"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    static char block[65536];
    ssize_t w;
    while ((w = write(fd, block, sizeof block)) > 0) {
    }
    const int rc = w < 0 && errno == ENOSPC ? 0 : -1;
    close(fd);
    return rc;
}

static void test_a_log_that_cannot_be_written_stops_the_run(void **state) {
    const char *dir = *state;
    char mnt[1100], run[1200];
    snprintf(mnt, sizeof mnt, "%s/disk", dir);
    assert_int_equal(mkdir(mnt, 0777), 0);
    /* a small tmpfs where this process may mount one (root); else a file size limit */
    const int tmpfs = geteuid() == 0 && mount("tmpfs", mnt, "tmpfs", 0, "size=4m") == 0;
    printf("full disk simulated by %s\n", tmpfs ? "a 4 MiB tmpfs" : "RLIMIT_FSIZE (12000 bytes)");
    snprintf(run, sizeof run, "%s/run", mnt);
    const char *args[] = {SMALL_ARGS(dir, run), NULL};
    char *err = NULL;
    int status;
    if (tmpfs) {
        pid_t pid = spawn_cutkit(args, in(dir, "full.txt"), 0);
        const int started = wait_for_lines(in(run, "checkpoints/latest"), 1, 60000);
        const int full = started == 0 ? fill_up(mnt) : -1;
        if (wait_within(pid, 30000, &status) != 0) {
            kill_child(pid);
            status = -1;
        }
        err = test_read_file(in(dir, "full.txt"), NULL);
        assert_int_equal(started, 0);
        assert_int_equal(full, 0);
        status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    } else {
        status = run_cutkit(dir, args, 120000, 12000, &err);
    }
    printf("exit %d; stderr:\n%s\n", status, err);
    /* stopped as for a non-finite loss: exit 1, naming the log and the last good checkpoint */
    char expected[1400];
    snprintf(expected, sizeof expected, "cannot write %s/steps.jsonl: ", run);
    const int named = strstr(err, expected) != NULL;
    snprintf(expected, sizeof expected, "stopped (last good checkpoint: %s/checkpoints/checkpoint-",
             run);
    const int checkpoint_named = strstr(err, expected) != NULL;
    free(err);
    const int lines = check_steps(run, 1);
    if (tmpfs) unlink(in(mnt, "filler")); /* the disk was full for a while only */
    assert_int_equal(status, 1);
    assert_true(named);
    assert_true(checkpoint_named);
    /* resumed once there is room: every update logged once, in order */
    const long step = latest_checkpoint(run);
    assert_true(step >= 40 && lines >= step);
    char stop[32];
    snprintf(stop, sizeof stop, "%ld", step + 2);
    const char *resume[] = {SMALL_ARGS(dir, run), "--resume", "--stop-after", stop, NULL};
    status = run_cutkit(dir, resume, 120000, 0, &err);
    if (status != 0) printf("resume: exit %d\n%s\n", status, err);
    free(err);
    assert_int_equal(status, 0);
    assert_int_equal(check_steps(run, 0), step + 2);
    if (tmpfs) assert_int_equal(umount(mnt), 0);
}

/* ---- flag combinations ------------------------------------------------------------------ */

/* Flags that cannot go together are usage errors (exit 2), found before anything is read, as
 * the README promises; they used to surface from the library as failures (exit 1). */
static void test_flag_combinations_exit_2(void **state) {
    const char *dir = *state;
    char *err = NULL;
    const char *train[] = {"train",        "--data", in(dir, "stories.txt"), "--out", in(dir, "x"),
                           "--batch-size", "4",      "--micro-batch",        "3",     NULL};
    assert_int_equal(run_cutkit(dir, train, 60000, 0, &err), 2);
    assert_non_null(strstr(err, "cutkit train: --micro-batch 3 must divide --batch-size 4"));
    free(err);
    const char *mc[] = {"eval",   "mc",
                        "--task", "arc_easy,arc_challenge",
                        "--data", in(dir, "stories.txt"),
                        "--out",  in(dir, "mc"),
                        NULL};
    assert_int_equal(run_cutkit(dir, mc, 60000, 0, &err), 2);
    assert_non_null(strstr(err, "is a file but 2 tasks were asked for"));
    free(err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_second_trainer_is_refused_and_a_dead_ones_lock_taken_over, make_temp, remove_temp),
        cmocka_unit_test_setup_teardown(test_every_pipeline_refuses_a_locked_directory, make_temp,
                                        remove_temp),
        cmocka_unit_test_setup_teardown(test_killed_align_online_takes_its_trainer_along, make_temp,
                                        remove_temp),
        cmocka_unit_test_setup_teardown(test_kills_during_resume_lose_nothing, make_temp,
                                        remove_temp),
        cmocka_unit_test_setup_teardown(test_a_log_that_cannot_be_written_stops_the_run, make_temp,
                                        remove_temp),
        cmocka_unit_test_setup_teardown(test_flag_combinations_exit_2, make_temp, remove_temp),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
