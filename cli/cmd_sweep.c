/* cmd_sweep.c — `cutkit sweep SPEC.json --out DIR`: a grid of trainings (λ x α, or any
 * `cutkit train` flags) and the evaluations of each, one run directory per point. A point
 * is finished when DIR/POINT/done exists; rerunning the sweep skips finished points and
 * resumes an interrupted training with `cutkit train --resume`.
 *
 * The spec:
 *   {"train":    {flag: value, ...},          `cutkit train` settings shared by all points
 *    "grid":     {flag: [v1, v2, ...], ...},  the cartesian product, in key order
 *    "evaluate": [["eval", "mc", "--model", "{run}/model", ...], ...]}  optional commands,
 *                                             "{run}" replaced by the point's directory */
#include <cjson/cJSON.h>
#include <csv.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "util/fileio.h"
#include "cli/spawn.h"

/* Room for a path: the sweep folder, a point name of several grid values and a file. */
#define PATH_BUF 4096

static struct {
    const char *out;
    int dry_run;
} opt;

static FlagSpec FLAGS[] = {
    {"out", FLAG_STRING, &opt.out, NULL, 0, -1, "sweep directory: one run directory per point"},
    {"dry-run", FLAG_BOOL, &opt.dry_run, NULL, 0, -1, "list the points and their state only"},
};

static const CommandSpec SPEC = {
    "sweep",
    "a grid of trainings and evaluations (lambda x alpha ...), resumable, with a summary",
    "SPEC.json --out DIR",
    "SPEC.json: {\"train\": {flags of cutkit train}, \"grid\": {\"lambda\": [1.1, 1.2], "
    "\"alpha\":\n"
    "[0.25, 0.5, 1]}, \"evaluate\": [[\"eval\", \"mc\", \"--model\", \"{run}/model\", ...]]}. "
    "Each\n"
    "point trains into DIR/<point> (e.g. DIR/lambda=1.1,alpha=0.5) and runs the evaluate\n"
    "commands with {run} replaced by that directory. Finished points are skipped on a rerun;\n"
    "DIR/summary.csv has one row per point: its grid values, state, final losses and flagged\n"
    "fraction. Relative paths in the spec are relative to the working directory.",
    FLAGS,
    sizeof FLAGS / sizeof FLAGS[0],
};

const CommandSpec *cmd_sweep_spec(void) {
    return &SPEC;
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

/* Checks the spec's shape; returns the number of points, or -1 after printing why not. */
static int check_spec(const cJSON *spec, const char *path) {
    const cJSON *train = cJSON_GetObjectItemCaseSensitive(spec, "train");
    const cJSON *grid = cJSON_GetObjectItemCaseSensitive(spec, "grid");
    const cJSON *evaluate = cJSON_GetObjectItemCaseSensitive(spec, "evaluate");
    if (!cJSON_IsObject(spec) || (train && !cJSON_IsObject(train)) || !cJSON_IsObject(grid)) {
        fprintf(stderr, "cutkit sweep: %s: expected {\"train\": {...}, \"grid\": {...}}\n", path);
        return -1;
    }
    int points = 1;
    const cJSON *axis;
    cJSON_ArrayForEach(axis, grid) {
        int n = cJSON_GetArraySize(axis);
        if (!cJSON_IsArray(axis) || n == 0) {
            fprintf(stderr, "cutkit sweep: %s: grid \"%s\": expected a non-empty array\n", path,
                    axis->string);
            return -1;
        }
        const cJSON *v;
        cJSON_ArrayForEach(v, axis) {
            if (!cJSON_IsNumber(v) && !cJSON_IsString(v) && !cJSON_IsBool(v)) {
                fprintf(stderr,
                        "cutkit sweep: %s: grid \"%s\": values must be numbers, strings "
                        "or booleans\n",
                        path, axis->string);
                return -1;
            }
        }
        if (train && cJSON_GetObjectItemCaseSensitive(train, axis->string)) {
            fprintf(stderr, "cutkit sweep: %s: \"%s\" is both in \"train\" and in \"grid\"\n", path,
                    axis->string);
            return -1;
        }
        points *= n;
    }
    if (evaluate) {
        const cJSON *cmd;
        int ok = cJSON_IsArray(evaluate);
        cJSON_ArrayForEach(cmd, evaluate) {
            const cJSON *arg;
            ok = ok && cJSON_IsArray(cmd) && cJSON_GetArraySize(cmd) > 0;
            cJSON_ArrayForEach(arg, cmd) ok = ok && cJSON_IsString(arg);
        }
        if (!ok) {
            fprintf(stderr,
                    "cutkit sweep: %s: \"evaluate\": expected a list of argument lists "
                    "(strings)\n",
                    path);
            return -1;
        }
    }
    return points;
}

/* Point p of the grid: its settings (train + the grid values) and its folder name. */
static cJSON *point_settings(const cJSON *spec, int p, char *name, size_t name_size) {
    const cJSON *train = cJSON_GetObjectItemCaseSensitive(spec, "train");
    const cJSON *grid = cJSON_GetObjectItemCaseSensitive(spec, "grid");
    cJSON *s = train ? cJSON_Duplicate(train, 1) : cJSON_CreateObject();
    name[0] = '\0';
    const cJSON *axis;
    cJSON_ArrayForEach(axis, grid) {
        int n = cJSON_GetArraySize(axis);
        const cJSON *v = cJSON_GetArrayItem(axis, p % n);
        p /= n;
        char text[128];
        value_text(v, text, sizeof text);
        for (char *c = text; *c; c++)
            if (*c == '/' || *c == ' ') *c = '_';
        size_t len = strlen(name);
        snprintf(name + len, name_size - len, "%s%s=%s", len ? "," : "", axis->string, text);
        cJSON_AddItemToObject(s, axis->string, cJSON_Duplicate(v, 1));
    }
    return s;
}

static int write_json(const char *path, const cJSON *obj) {
    char *text = cJSON_Print(obj);
    CkError err = {{0}};
    int rc = text ? fileio_write_atomic(path, text, strlen(text), &err) : -1;
    if (rc != 0) fprintf(stderr, "cutkit sweep: %s\n", text ? err.msg : "out of memory");
    free(text);
    return rc;
}

/* Runs evaluate command i of the spec for the point in dir, once (a marker records it). */
static int run_evaluation(const cJSON *cmd, int i, const char *dir) {
    char file[48];
    snprintf(file, sizeof file, "evaluate-%d.done", i);
    if (spawn_marked(dir, file)) return 0;
    int n = cJSON_GetArraySize(cmd), rc = 0;
    char **argv = calloc((size_t)n + 1, sizeof(char *));
    for (int a = 0; argv && a < n && rc == 0; a++) {
        const char *arg = cJSON_GetArrayItem(cmd, a)->valuestring;
        const char *hole = strstr(arg, "{run}");
        size_t len = strlen(arg) + (hole ? strlen(dir) : 0) + 1;
        argv[a] = malloc(len);
        if (!argv[a]) {
            rc = -1;
        } else if (hole) {
            snprintf(argv[a], len, "%.*s%s%s", (int)(hole - arg), arg, dir, hole + 5);
        } else {
            memcpy(argv[a], arg, len);
        }
    }
    if (!argv) rc = -1;
    if (rc == 0) rc = spawn_self(argv) == 0 ? 0 : -1;
    for (int a = 0; argv && a < n; a++) free(argv[a]);
    free(argv);
    if (rc == 0 && !spawn_stop_requested) rc = spawn_mark("sweep", dir, file);
    return rc;
}

/* Trains and evaluates point p unless it is done. */
static int run_point(const cJSON *spec, const cJSON *settings, const char *dir) {
    char path[PATH_BUF];
    if (spawn_marked(dir, "done")) return 0;
    if (spawn_make_dir("sweep", dir) != 0) return -1;
    fileio_path(path, sizeof path, dir, "point.json");
    if (write_json(path, settings) != 0) return -1;
    char *args[] = {"--settings", path, NULL};
    if (spawn_train("sweep", dir, args) != 0) return -1;
    const cJSON *evaluate = cJSON_GetObjectItemCaseSensitive(spec, "evaluate");
    for (int i = 0; i < cJSON_GetArraySize(evaluate); i++)
        if (run_evaluation(cJSON_GetArrayItem(evaluate, i), i, dir) != 0 || spawn_stop_requested)
            return -1;
    return spawn_mark("sweep", dir, "done");
}

typedef struct {
    int steps;
    double loss, loss_mle, loss_ul, flagged_fraction; /* last step; fraction: last 10 steps */
} StepSummary;

static void summarize_steps(const char *dir, StepSummary *s) {
    memset(s, 0, sizeof *s);
    char path[PATH_BUF];
    fileio_path(path, sizeof path, dir, "steps.jsonl");
    CkError err = {{0}};
    size_t size = 0;
    char *text = spawn_exists(path) ? fileio_read_text(path, (size_t)1 << 30, &size, &err) : NULL;
    double window[10];
    int n_window = 0;
    for (char *line = text; line && *line;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        cJSON *obj = cJSON_Parse(line);
        if (obj) {
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
        }
        cJSON_Delete(obj);
        line = next;
    }
    free(text);
    int k = n_window < 10 ? n_window : 10;
    for (int i = 0; i < k; i++) s->flagged_fraction += window[i] / k;
}

/* One CSV field, quoted by libcsv only when it holds a comma, quote or line break. */
static void csv_field(FILE *f, const char *text, int last) {
    if (strpbrk(text, ",\"\r\n"))
        csv_fwrite(f, text, strlen(text));
    else
        fputs(text, f);
    fputc(last ? '\n' : ',', f);
}

/* DIR/summary.csv: one row per point, written whole and atomically. */
static int write_summary(const cJSON *spec, int points) {
    char path[PATH_BUF], tmp[PATH_BUF + 8];
    fileio_path(path, sizeof path, opt.out, "summary.csv");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "cutkit sweep: cannot write %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    const cJSON *grid = cJSON_GetObjectItemCaseSensitive(spec, "grid"), *axis;
    csv_field(f, "point", 0);
    cJSON_ArrayForEach(axis, grid) csv_field(f, axis->string, 0);
    fputs("state,steps,loss,loss_mle,loss_ul,flagged_fraction\n", f);
    for (int p = 0; p < points; p++) {
        char name[1024], dir[PATH_BUF], marker[PATH_BUF], text[128];
        cJSON *s = point_settings(spec, p, name, sizeof name);
        fileio_path(dir, sizeof dir, opt.out, name);
        fileio_path(marker, sizeof marker, dir, "done");
        csv_field(f, name, 0);
        cJSON_ArrayForEach(axis, grid) {
            value_text(cJSON_GetObjectItemCaseSensitive(s, axis->string), text, sizeof text);
            csv_field(f, text, 0);
        }
        cJSON_Delete(s);
        StepSummary st;
        summarize_steps(dir, &st);
        const char *state = spawn_exists(marker) ? "done"
                            : spawn_exists(dir)  ? "partial"
                                                 : "pending";
        fprintf(f, "%s,%d,%.6f,%.6f,%.6f,%.6f\n", state, st.steps, st.loss, st.loss_mle, st.loss_ul,
                st.flagged_fraction);
    }
    int ok = fflush(f) == 0 && !ferror(f);
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "cutkit sweep: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int cmd_sweep(int argc, char **argv) {
    char *positional[1];
    int n_positional, rc = flags_parse(&SPEC, argc, argv, positional, 1, &n_positional);
    if (rc != 0) return rc;
    if (n_positional != 1 || !opt.out) {
        fprintf(stderr, "cutkit sweep: usage: cutkit sweep SPEC.json --out DIR\n");
        return 2;
    }
    CkError err = {{0}};
    char *text = fileio_read_text(positional[0], 1u << 20, NULL, &err);
    if (!text) {
        fprintf(stderr, "cutkit sweep: %s\n", err.msg);
        return 2;
    }
    cJSON *spec = cJSON_Parse(text);
    free(text);
    int points = spec ? check_spec(spec, positional[0]) : -1;
    if (!spec) fprintf(stderr, "cutkit sweep: %s: not valid JSON\n", positional[0]);
    if (points < 0) {
        cJSON_Delete(spec);
        return 2;
    }
    if (spawn_make_dir("sweep", opt.out) != 0) {
        cJSON_Delete(spec);
        return 1;
    }
    spawn_catch_signals();
    int failed = 0;
    for (int p = 0; p < points && !spawn_stop_requested; p++) {
        char name[1024], dir[PATH_BUF], marker[PATH_BUF];
        cJSON *s = point_settings(spec, p, name, sizeof name);
        if (fileio_path(dir, sizeof dir, opt.out, name) != 0 || strlen(dir) > PATH_BUF - 64) {
            fprintf(stderr, "cutkit sweep: the path of point %s is too long\n", name);
            cJSON_Delete(s);
            cJSON_Delete(spec);
            return 1;
        }
        fileio_path(marker, sizeof marker, dir, "done");
        int done = spawn_exists(marker);
        fprintf(stderr, "point %d/%d %s: %s\n", p + 1, points, name,
                done          ? "done, skipped"
                : opt.dry_run ? "to do"
                              : "running");
        if (!done && !opt.dry_run && run_point(spec, s, dir) != 0 && !spawn_stop_requested) {
            fprintf(stderr, "cutkit sweep: point %s failed; the others go on\n", name);
            failed++;
        }
        cJSON_Delete(s);
    }
    rc = opt.dry_run ? 0 : write_summary(spec, points);
    cJSON_Delete(spec);
    if (spawn_stop_requested) {
        fprintf(stderr, "cutkit sweep: interrupted; rerun the same command to resume\n");
        return 130;
    }
    if (rc != 0 || failed) {
        fprintf(stderr, "cutkit sweep: %d point(s) failed; rerun to retry them\n", failed);
        return 1;
    }
    fprintf(stderr, "cutkit sweep: %d points done; summary in %s/summary.csv\n", points, opt.out);
    return 0;
}
