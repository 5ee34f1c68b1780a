/* rundir.c — see rundir.h. */
#include "reports/rundir.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/jsonl.h"

/* Results files are small; anything larger is not what the evaluators write. */
#define RUNDIR_MAX_JSON (64u << 20)

static const char *FILE_NAMES[RUN_N_FILES] = {
    "config.json",    "eval/mc/results.json", "eval/winrate.json",
    "detection.json", "errors.json",          "eval/rouge/rouge.json",
};

/* Where `cutkit eval rouge --out RUN/rouge` (its README's example) puts the scores. */
#define ROUGE_OTHER_NAME "rouge/rouge.json"

const char *rundir_file_name(RunFile f) {
    return (f >= 0 && f < RUN_N_FILES) ? FILE_NAMES[f] : "";
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Line and column of byte offset off in text, for messages about JSON errors. */
static void line_col(const char *text, size_t off, int *line, int *col) {
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && text[i]; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* Parses the JSON file at path into *out; an absent file leaves *out NULL and succeeds. */
static int read_json(const char *path, cJSON **out, CkError *err) {
    *out = NULL;
    if (access(path, F_OK) != 0) return 0;
    size_t size = 0;
    char *text = fileio_read_text(path, RUNDIR_MAX_JSON, &size, err);
    if (!text) return -1;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, size + 1, &end, 1);
    if (!root) {
        int line, col;
        size_t off = end ? (size_t)(end - text) : 0;
        line_col(text, off, &line, &col);
        free(text);
        return ck_fail(err, "%s: line %d, column %d: not valid JSON", path, line, col);
    }
    free(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ck_fail(err, "%s: expected a JSON object at the top", path);
    }
    *out = root;
    return 0;
}

static double field(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int steps_push(RunSteps *s, int *cap, const cJSON *o) {
    if (s->n == *cap) {
        int c = *cap ? *cap * 2 : 256;
        double **cols[6] = {&s->step,     &s->lr,      &s->loss,
                            &s->loss_mle, &s->loss_ul, &s->flagged_fraction};
        for (int k = 0; k < 6; k++) {
            double *p = realloc(*cols[k], sizeof(double) * (size_t)c);
            if (!p) return -1;
            *cols[k] = p;
        }
        *cap = c;
    }
    s->step[s->n] = field(o, "step");
    s->lr[s->n] = field(o, "lr");
    s->loss[s->n] = field(o, "loss");
    s->loss_mle[s->n] = field(o, "loss_mle");
    s->loss_ul[s->n] = field(o, "loss_ul");
    s->flagged_fraction[s->n] = field(o, "flagged_fraction");
    s->n++;
    return 0;
}

/* Reads steps.jsonl (absent: no steps). Blank lines are skipped; a line that is not a JSON
 * object is an error unless it is the last one and has no newline yet (being written). */
static int read_steps(const char *path, RunSteps *s, CkError *err) {
    if (access(path, F_OK) != 0 && errno == ENOENT) return 0;
    size_t size = 0;
    char *text = fileio_read_text(path, (size_t)1 << 31, &size, err);
    if (!text) return -1;
    JsonlCursor cur;
    jsonl_init(&cur, text, size);
    int cap = 0, rc = 0;
    cJSON *o = NULL;
    while ((rc = jsonl_next_object(&cur, path, 0, &o, err)) == 1) {
        int pushed = steps_push(s, &cap, o);
        cJSON_Delete(o);
        if (pushed != 0) {
            free(text);
            return ck_fail(err, "%s: out of memory", path);
        }
    }
    if (rc < 0 && !cur.terminated) rc = 0; /* a torn last line: the writer is still at it */
    free(text);
    return rc < 0 ? -1 : 0;
}

/* The last component of path, trailing slashes ignored; "." and ".." are resolved first. */
static char *dir_name(const char *path) {
    char *copy = strdup(path);
    if (!copy) return NULL;
    size_t n = strlen(copy);
    while (n > 1 && copy[n - 1] == '/') copy[--n] = '\0';
    const char *slash = strrchr(copy, '/');
    const char *base = slash && slash[1] ? slash + 1 : copy;
    if (!strcmp(base, ".") || !strcmp(base, "..")) {
        char *real = realpath(path, NULL);
        if (real) {
            char *r = dir_name(real);
            free(real);
            free(copy);
            return r;
        }
    }
    char *r = strdup(base);
    free(copy);
    return r;
}

int rundir_open(RunDir *rd, const char *path, CkError *err) {
    memset(rd, 0, sizeof *rd);
    struct stat st;
    if (stat(path, &st) != 0) return ck_fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return ck_fail(err, "%s: not a directory", path);
    rd->path = strdup(path);
    if (!rd->path) return ck_fail(err, "out of memory");
    for (int f = 0; f < RUN_N_FILES; f++) {
        char *p = join(path, FILE_NAMES[f]);
        if (!p) return ck_fail(err, "out of memory");
        int rc = read_json(p, &rd->json[f], err);
        free(p);
        if (rc == 0 && f == RUN_ROUGE && !rd->json[f]) {
            if (!(p = join(path, ROUGE_OTHER_NAME))) return ck_fail(err, "out of memory");
            rc = read_json(p, &rd->json[f], err);
            free(p);
        }
        if (rc != 0) return -1;
    }
    const cJSON *label = cJSON_GetObjectItemCaseSensitive(rd->json[RUN_CONFIG], "label");
    if (cJSON_IsString(label) && label->valuestring[0])
        rd->label = strdup(label->valuestring);
    else
        rd->label = dir_name(path);
    char *steps = join(path, "steps.jsonl");
    rd->contrast_path = join(path, "contrast.csv");
    if (!rd->label || !steps || !rd->contrast_path) {
        free(steps);
        return ck_fail(err, "out of memory");
    }
    if (access(rd->contrast_path, F_OK) != 0) {
        free(rd->contrast_path);
        rd->contrast_path = NULL;
    }
    int rc = read_steps(steps, &rd->steps, err);
    free(steps);
    return rc;
}

void rundir_close(RunDir *rd) {
    if (!rd) return;
    free(rd->path);
    free(rd->label);
    free(rd->contrast_path);
    for (int f = 0; f < RUN_N_FILES; f++) cJSON_Delete(rd->json[f]);
    RunSteps *s = &rd->steps;
    free(s->step);
    free(s->lr);
    free(s->loss);
    free(s->loss_mle);
    free(s->loss_ul);
    free(s->flagged_fraction);
    memset(rd, 0, sizeof *rd);
}

double rundir_json_number(const cJSON *root, const char *path) {
    const cJSON *node = root;
    const char *p = path;
    while (node && *p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        char key[256];
        if (len >= sizeof key) return NAN;
        memcpy(key, p, len);
        key[len] = '\0';
        if (cJSON_IsArray(node)) {
            char *end;
            long i = strtol(key, &end, 10);
            node = (*end || end == key || i < 0 || i > INT_MAX) ? NULL
                                                                : cJSON_GetArrayItem(node, (int)i);
        } else {
            node = cJSON_GetObjectItemCaseSensitive(node, key);
        }
        p += len;
        if (*p == '/') p++;
    }
    return cJSON_IsNumber(node) ? node->valuedouble : NAN;
}

double rundir_config_number(const RunDir *rd, const char *key) {
    return field(rd->json[RUN_CONFIG], key);
}

double rundir_tail_mean(const double *v, int n, int k) {
    double sum = 0;
    int used = 0;
    for (int i = n - 1; i >= 0 && used < k; i--) {
        if (isfinite(v[i])) {
            sum += v[i];
            used++;
        }
    }
    return used ? sum / used : NAN;
}
