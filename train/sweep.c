/* sweep.c — the grid's points, their runs and the summary. */
#include "train/sweep.h"

#include <cjson/cJSON.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/jsonl.h"
#include "util/outdir.h"
#include "util/strbuf.h"

/* Room for a path: the sweep folder, a point name of several grid values and a file. */
#define PATH_BUF 4096
#define NAME_BUF 1024
/* A grid value's part of a folder name keeps at most VALUE_BUF - 1 characters. */
#define VALUE_BUF 128
/* Far more trainings than a sweep could run; keeps the count and its tables small. */
#define MAX_POINTS 100000
/* The largest seed: every integer up to it is exact in a JSON number (a double). */
#define MAX_SEED 9007199254740992.0

void sweep_options_init(SweepOptions *o) {
    memset(o, 0, sizeof *o);
}

static void log_msg(const SweepOptions *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void log_msg(const SweepOptions *o, const char *fmt, ...) {
    if (!o->log) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(o->log, fmt, ap);
    va_end(ap);
}

/* A grid value as a flag value and a folder-name fragment ("1.1", "cosine", "true"). */
static void value_text(const cJSON *v, char *buf, size_t size) {
    if (cJSON_IsString(v))
        snprintf(buf, size, "%s", v->valuestring);
    else if (cJSON_IsBool(v))
        snprintf(buf, size, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else
        snprintf(buf, size, "%.15g", v->valuedouble);
}

/* Checks one grid axis: a non-empty array of numbers, strings or booleans, not in train. */
static int check_axis(const cJSON *axis, const cJSON *train, const char *path, CkError *err) {
    if (!cJSON_IsArray(axis) || cJSON_GetArraySize(axis) == 0)
        return ck_fail(err, "%s: grid \"%s\": expected a non-empty array", path, axis->string);
    const cJSON *v;
    cJSON_ArrayForEach(v, axis) {
        if (!cJSON_IsNumber(v) && !cJSON_IsString(v) && !cJSON_IsBool(v))
            return ck_fail(err, "%s: grid \"%s\": values must be numbers, strings or booleans",
                           path, axis->string);
    }
    if (train && cJSON_GetObjectItemCaseSensitive(train, axis->string))
        return ck_fail(err, "%s: \"%s\" is both in \"train\" and in \"grid\"", path, axis->string);
    return 0;
}

/* Checks "seeds": distinct integers from 0 to 2^53, and no "seed" in "train" or "grid" (the
 * seed of a point is the axis's). Returns the number of seeds (1 without the key), or -1. */
static int check_seeds(const cJSON *seeds, const cJSON *train, const cJSON *grid, const char *path,
                       CkError *err) {
    if (!seeds) return 1;
    if (!cJSON_IsArray(seeds) || cJSON_GetArraySize(seeds) == 0)
        return ck_fail(err, "%s: \"seeds\": expected a non-empty array of integers", path);
    int i = 0;
    for (const cJSON *v = seeds->child; v; v = v->next, i++) {
        double x = cJSON_IsNumber(v) ? v->valuedouble : -1;
        if (!(x >= 0 && x <= MAX_SEED && x == (double)(uint64_t)x))
            return ck_fail(err, "%s: \"seeds\" item %d: expected an integer from 0 to 2^53", path,
                           i + 1);
        for (const cJSON *u = seeds->child; u != v; u = u->next)
            if (u->valuedouble == x)
                return ck_fail(err, "%s: \"seeds\": %.0f is listed twice", path, x);
    }
    const char *where = train && cJSON_GetObjectItemCaseSensitive(train, "seed") ? "train"
                        : grid && cJSON_GetObjectItemCaseSensitive(grid, "seed") ? "grid"
                                                                                 : NULL;
    if (where)
        return ck_fail(err, "%s: \"seed\" is both in \"%s\" and given by \"seeds\"", path, where);
    return i;
}

/* Checks the spec's shape; returns the number of points, or -1 with err. */
static int check_spec(const cJSON *spec, const char *path, CkError *err) {
    const cJSON *train = cJSON_GetObjectItemCaseSensitive(spec, "train");
    const cJSON *grid = cJSON_GetObjectItemCaseSensitive(spec, "grid");
    const cJSON *seeds = cJSON_GetObjectItemCaseSensitive(spec, "seeds");
    const cJSON *evaluate = cJSON_GetObjectItemCaseSensitive(spec, "evaluate");
    /* a spec with seeds may leave the grid out: one setting, repeated over the seeds */
    if (!cJSON_IsObject(spec) || (train && !cJSON_IsObject(train)) ||
        !(cJSON_IsObject(grid) || (!grid && seeds)))
        return ck_fail(err, "%s: expected {\"train\": {...}, \"grid\": {...}}", path);
    int points = check_seeds(seeds, train, grid, path, err);
    if (points < 0) return -1;
    const cJSON *axis;
    cJSON_ArrayForEach(axis, grid) {
        if (check_axis(axis, train, path, err) != 0) return -1;
        points *= cJSON_GetArraySize(axis);
        if (points > MAX_POINTS)
            return ck_fail(err, "%s: the grid has more than %d points", path, MAX_POINTS);
    }
    if (evaluate) {
        const cJSON *cmd;
        int ok = cJSON_IsArray(evaluate);
        cJSON_ArrayForEach(cmd, evaluate) {
            const cJSON *arg;
            ok = ok && cJSON_IsArray(cmd) && cJSON_GetArraySize(cmd) > 0;
            cJSON_ArrayForEach(arg, cmd) ok = ok && cJSON_IsString(arg);
        }
        if (!ok)
            return ck_fail(err, "%s: \"evaluate\": expected a list of argument lists (strings)",
                           path);
    }
    return points;
}

static cJSON *point_settings(const cJSON *spec, int p, char *name, size_t name_size, char *group,
                             size_t group_size);

/* A point's folder name and its index, sorted by name to find two points with one folder. */
typedef struct {
    char *name;
    int point;
} PointName;

static int compare_point_names(const void *a, const void *b) {
    const PointName *x = a, *y = b;
    const int c = strcmp(x->name, y->name);
    return c ? c : x->point - y->point;
}

/* Refuses a grid in which two points would share a folder (values that differ only in the
 * characters a folder name replaces, or beyond the length it keeps): one would train and the
 * others report its results as theirs. */
static int check_unique_folders(const cJSON *spec, int points, const char *path, CkError *err) {
    PointName *names = calloc((size_t)points, sizeof *names);
    int rc = names ? 0 : ck_fail(err, "out of memory");
    for (int p = 0; rc == 0 && p < points; p++) {
        char name[NAME_BUF];
        cJSON_Delete(point_settings(spec, p, name, sizeof name, NULL, 0));
        names[p] = (PointName){strdup(name), p};
        if (!names[p].name) rc = ck_fail(err, "out of memory");
    }
    if (rc == 0) qsort(names, (size_t)points, sizeof *names, compare_point_names);
    for (int i = 1; rc == 0 && i < points; i++)
        if (!strcmp(names[i - 1].name, names[i].name))
            rc = ck_fail(err,
                         "%s: points %d and %d would share the folder '%.200s' (their grid "
                         "values differ only in '/', ' ' or after %d characters): make them "
                         "differ in their first characters",
                         path, names[i - 1].point + 1, names[i].point + 1, names[i].name,
                         VALUE_BUF - 1);
    for (int p = 0; names && p < points; p++) free(names[p].name);
    free(names);
    return rc;
}

int sweep_spec_load(SweepSpec *s, const char *path, CkError *err) {
    memset(s, 0, sizeof *s);
    char *text = fileio_read_text(path, 1u << 20, NULL, err);
    if (!text) return -1;
    s->doc = cJSON_Parse(text);
    free(text);
    if (!s->doc) return ck_fail(err, "%s: not valid JSON", path);
    s->points = check_spec(s->doc, path, err);
    if (s->points >= 0 && check_unique_folders(s->doc, s->points, path, err) != 0) s->points = -1;
    if (s->points < 0) {
        sweep_spec_free(s);
        return -1;
    }
    return 0;
}

void sweep_spec_free(SweepSpec *s) {
    cJSON_Delete(s->doc);
    memset(s, 0, sizeof *s);
}

/* Point p of the grid: its settings (train + the grid values + its seed; the caller deletes
 * them), its folder name and, when group is not NULL, the name of its seed group (the folder
 * name without the seed). The seeds are the last axis, the slowest: every setting of the
 * first seed comes before the second seed's. */
static cJSON *point_settings(const cJSON *spec, int p, char *name, size_t name_size, char *group,
                             size_t group_size) {
    const cJSON *train = cJSON_GetObjectItemCaseSensitive(spec, "train");
    const cJSON *grid = cJSON_GetObjectItemCaseSensitive(spec, "grid");
    const cJSON *seeds = cJSON_GetObjectItemCaseSensitive(spec, "seeds");
    cJSON *s = train ? cJSON_Duplicate(train, 1) : cJSON_CreateObject();
    name[0] = '\0';
    const cJSON *axis;
    cJSON_ArrayForEach(axis, grid) {
        int n = cJSON_GetArraySize(axis);
        const cJSON *v = cJSON_GetArrayItem(axis, p % n);
        p /= n;
        char text[VALUE_BUF];
        value_text(v, text, sizeof text);
        for (char *c = text; *c; c++)
            if (*c == '/' || *c == ' ') *c = '_';
        size_t len = strlen(name);
        snprintf(name + len, name_size - len, "%s%s=%s", len ? "," : "", axis->string, text);
        cJSON_AddItemToObject(s, axis->string, cJSON_Duplicate(v, 1));
    }
    if (group) snprintf(group, group_size, "%s", name);
    if (seeds) {
        /* what is left of p after the grid axes is the seed's index */
        const double seed = cJSON_GetArrayItem(seeds, p)->valuedouble;
        size_t len = strlen(name);
        snprintf(name + len, name_size - len, "%sseed=%.0f", len ? "," : "", seed);
        cJSON_AddNumberToObject(s, "seed", seed);
    }
    return s;
}

/* arg with every "{run}" replaced by dir and, when seed is not NULL, every "{seed}" by seed;
 * malloc'd, or NULL when out of memory. */
static char *fill_holes(const char *arg, const char *dir, const char *seed) {
    StrBuf b = {0};
    int ok = strbuf_put(&b, "", 0) == 0;
    for (const char *c = arg; ok && *c;) {
        if (!strncmp(c, "{run}", 5)) {
            ok = strbuf_puts(&b, dir) == 0;
            c += 5;
        } else if (seed && !strncmp(c, "{seed}", 6)) {
            ok = strbuf_puts(&b, seed) == 0;
            c += 6;
        } else {
            ok = strbuf_put(&b, c++, 1) == 0;
        }
    }
    if (!ok) {
        strbuf_free(&b);
        return NULL;
    }
    return strbuf_take(&b);
}

/* The arguments of an evaluate command with its holes filled (fill_holes; NULL-terminated,
 * malloc'd; free with free_args), or NULL when out of memory. */
static char **evaluation_args(const cJSON *cmd, const char *dir, const char *seed) {
    int n = cJSON_GetArraySize(cmd);
    char **argv = calloc((size_t)n + 1, sizeof(char *));
    for (int a = 0; argv && a < n; a++) {
        if (!(argv[a] = fill_holes(cJSON_GetArrayItem(cmd, a)->valuestring, dir, seed))) {
            for (int i = 0; i < a; i++) free(argv[i]);
            free(argv);
            return NULL;
        }
    }
    return argv;
}

static void free_args(char **argv) {
    for (int a = 0; argv && argv[a]; a++) free(argv[a]);
    free(argv);
}

/* Runs evaluate command i of the spec for the point in dir, once (a marker records it). */
static int run_evaluation(const SweepOptions *o, const cJSON *cmd, int i, const char *dir,
                          const char *seed, CkError *err) {
    char marker[48];
    snprintf(marker, sizeof marker, "evaluate-%d.done", i);
    if (stage_marked(dir, marker)) return 0;
    char **argv = evaluation_args(cmd, dir, seed);
    if (!argv) return ck_fail(err, "out of memory");
    int rc = stage_run(&o->runner, argv, err);
    free_args(argv);
    if (rc == 0 && !stage_stop_requested(&o->runner)) rc = stage_mark(dir, marker, err);
    return rc;
}

/* Trains and evaluates the point in dir unless it is done. */
static int run_point(const SweepOptions *o, const cJSON *spec, const cJSON *settings,
                     const char *dir, CkError *err) {
    if (stage_marked(dir, "done")) return 0;
    if (fileio_make_dirs(dir, err) != 0) return -1;
    char path[PATH_BUF];
    fileio_path(path, sizeof path, dir, "point.json");
    char *text = cJSON_Print(settings);
    int rc =
        text ? fileio_write_atomic(path, text, strlen(text), err) : ck_fail(err, "out of memory");
    free(text);
    if (rc != 0) return -1;
    char *args[] = {"--settings", path, NULL};
    if (stage_train(&o->runner, dir, args, err) != 0) return -1;
    const cJSON *evaluate = cJSON_GetObjectItemCaseSensitive(spec, "evaluate");
    char seed[32];
    const int seeds = cJSON_GetObjectItemCaseSensitive(spec, "seeds") != NULL;
    if (seeds)
        snprintf(seed, sizeof seed, "%.0f",
                 cJSON_GetObjectItemCaseSensitive(settings, "seed")->valuedouble);
    for (int i = 0; i < cJSON_GetArraySize(evaluate); i++) {
        if (run_evaluation(o, cJSON_GetArrayItem(evaluate, i), i, dir, seeds ? seed : NULL, err) !=
            0)
            return -1;
        if (stage_stop_requested(&o->runner)) return ck_fail(err, "stopped");
    }
    return stage_mark(dir, "done", err);
}

typedef struct {
    int steps;
    double loss, loss_mle, loss_ul, flagged_fraction; /* last step; fraction: last 10 steps */
} StepSummary;

/* The run's steps.jsonl in s (all zero without one); a line that is not an object, such as
 * a torn last line of a training still running, is passed over. */
static void summarize_steps(const char *dir, StepSummary *s) {
    memset(s, 0, sizeof *s);
    char path[PATH_BUF];
    fileio_path(path, sizeof path, dir, "steps.jsonl");
    CkError ignored = {{0}};
    size_t size = 0;
    char *text =
        access(path, F_OK) == 0 ? fileio_read_text(path, (size_t)1 << 30, &size, &ignored) : NULL;
    double window[10];
    int n_window = 0, r;
    JsonlCursor c;
    jsonl_init(&c, text, text ? size : 0);
    cJSON *obj;
    while ((r = jsonl_next_object(&c, path, 1, &obj, &ignored)) != 0) {
        if (r < 0) continue;
        const cJSON *v;
        s->steps++;
        if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(obj, "loss")))
            s->loss = v->valuedouble;
        if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(obj, "loss_mle")))
            s->loss_mle = v->valuedouble;
        if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(obj, "loss_ul")))
            s->loss_ul = v->valuedouble;
        if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(obj, "flagged_fraction")))
            window[n_window++ % 10] = v->valuedouble;
        cJSON_Delete(obj);
    }
    free(text);
    int k = n_window < 10 ? n_window : 10;
    for (int i = 0; i < k; i++) s->flagged_fraction += window[i] / k;
}

/* One CSV field (RFC 4180): quoted, with its quotes doubled, only when it holds a comma, a
 * quote or a line break. */
static void csv_field(FILE *f, const char *text, int last) {
    if (strpbrk(text, ",\"\r\n")) {
        fputc('"', f);
        for (const char *c = text; *c; c++) {
            if (*c == '"') fputc('"', f);
            fputc(*c, f);
        }
        fputc('"', f);
    } else {
        fputs(text, f);
    }
    fputc(last ? '\n' : ',', f);
}

/* The summary row of point p; failed: its training or evaluation failed in this run. A point
 * without a logged update has empty loss fields, never zeros. */
static void summary_row(FILE *f, const SweepOptions *o, const cJSON *spec, int p, int failed) {
    const cJSON *grid = cJSON_GetObjectItemCaseSensitive(spec, "grid"), *axis;
    const int seeds = cJSON_GetObjectItemCaseSensitive(spec, "seeds") != NULL;
    char name[NAME_BUF], group[NAME_BUF], dir[PATH_BUF], text[128];
    cJSON *s = point_settings(spec, p, name, sizeof name, group, sizeof group);
    fileio_path(dir, sizeof dir, o->out, name);
    csv_field(f, name, 0);
    if (seeds) csv_field(f, group, 0);
    cJSON_ArrayForEach(axis, grid) {
        value_text(cJSON_GetObjectItemCaseSensitive(s, axis->string), text, sizeof text);
        csv_field(f, text, 0);
    }
    if (seeds) fprintf(f, "%.0f,", cJSON_GetObjectItemCaseSensitive(s, "seed")->valuedouble);
    cJSON_Delete(s);
    StepSummary st;
    summarize_steps(dir, &st);
    const char *state = stage_marked(dir, "done") ? "done"
                        : failed                  ? "failed"
                        : access(dir, F_OK) == 0  ? "partial"
                                                  : "pending";
    if (st.steps == 0)
        fprintf(f, "%s,0,,,,\n", state);
    else
        fprintf(f, "%s,%d,%.6f,%.6f,%.6f,%.6f\n", state, st.steps, st.loss, st.loss_mle, st.loss_ul,
                st.flagged_fraction);
}

/* OUT/summary.csv: one row per point, written whole and atomically; failed[p]: point p failed
 * in this run. */
static int write_summary(const SweepOptions *o, const SweepSpec *spec, const unsigned char *failed,
                         CkError *err) {
    char path[PATH_BUF];
    fileio_path(path, sizeof path, o->out, "summary.csv");
    AtomicFile a;
    if (atomic_file_open(&a, path, err) != 0) return -1;
    const cJSON *grid = cJSON_GetObjectItemCaseSensitive(spec->doc, "grid"), *axis;
    const int seeds = cJSON_GetObjectItemCaseSensitive(spec->doc, "seeds") != NULL;
    csv_field(a.f, "point", 0);
    if (seeds) csv_field(a.f, "group", 0);
    cJSON_ArrayForEach(axis, grid) csv_field(a.f, axis->string, 0);
    if (seeds) csv_field(a.f, "seed", 0);
    fputs("state,steps,loss,loss_mle,loss_ul,flagged_fraction\n", a.f);
    for (int p = 0; p < spec->points; p++) summary_row(a.f, o, spec->doc, p, failed[p]);
    return atomic_file_commit(&a, err);
}

/* Point p: its line in the log, then its run unless done or a dry run; 1 when it failed. */
static int sweep_point(const SweepOptions *o, const SweepSpec *spec, int p, const char *name,
                       const cJSON *settings, const char *dir) {
    int done = stage_marked(dir, "done");
    log_msg(o, "point %d/%d %s: %s\n", p + 1, spec->points, name,
            done         ? "done, skipped"
            : o->dry_run ? "to do"
                         : "running");
    if (done || o->dry_run) return 0;
    CkError why = {{0}};
    if (run_point(o, spec->doc, settings, dir, &why) == 0 || stage_stop_requested(&o->runner))
        return 0;
    log_msg(o, "cutkit sweep: %s\ncutkit sweep: point %s failed; the others go on\n", why.msg,
            name);
    return 1;
}

/* Runs (or, in a dry run, lists) every point; failed[p] is set for the points that failed. */
static int sweep_points(const SweepOptions *o, const SweepSpec *spec, unsigned char *failed,
                        SweepResult *r, CkError *err) {
    for (int p = 0; p < spec->points && !stage_stop_requested(&o->runner); p++) {
        char name[NAME_BUF], dir[PATH_BUF];
        cJSON *settings = point_settings(spec->doc, p, name, sizeof name, NULL, 0);
        if (fileio_path(dir, sizeof dir, o->out, name) != 0 || strlen(dir) > PATH_BUF - 64) {
            cJSON_Delete(settings);
            return ck_fail(err, "the path of point %s is too long", name);
        }
        failed[p] = (unsigned char)sweep_point(o, spec, p, name, settings, dir);
        r->failed += failed[p];
        cJSON_Delete(settings);
    }
    return 0;
}

int sweep_run(const SweepOptions *o, const SweepSpec *spec, SweepResult *r, CkError *err) {
    memset(r, 0, sizeof *r);
    r->points = spec->points;
    /* OUT is this sweep's alone; each point's folder is its training's, locked by it. A dry
     * run writes nothing, so it neither creates nor locks OUT. */
    RunLock lock = {0};
    if (!o->dry_run && outdir_open(&lock, o->out, err) != 0) return -1;
    unsigned char *failed = calloc((size_t)spec->points + 1, 1);
    int rc = failed ? sweep_points(o, spec, failed, r, err) : ck_fail(err, "out of memory");
    if (rc == 0 && o->dry_run)
        log_msg(o,
                "cutkit sweep: dry run: nothing was trained or evaluated, and %s/summary.csv "
                "was not written\n",
                o->out);
    else if (rc == 0)
        rc = write_summary(o, spec, failed, err);
    free(failed);
    runlock_release(&lock);
    return rc;
}
