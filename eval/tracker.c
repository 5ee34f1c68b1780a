/* tracker.c — the harness's results and samples files (see tracker.h). */
#include "eval/tracker.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "eval/mc_samples.h"
#include "eval/pyjson.h"
#include "util/fileio.h"
#include "util/timer.h"

void tracker_sanitize_model_name(const char *name, char *out, size_t cap) {
    static const char SPECIAL[] = "\"<>:/|\\?*[]";
    size_t o = 0;
    for (const char *p = name; *p && o + 1 < cap;) {
        if (!strchr(SPECIAL, *p)) {
            out[o++] = *p++;
            continue;
        }
        /* one "__" for the whole run, as re.sub(r'[...]+', '__', name) */
        while (*p && strchr(SPECIAL, *p)) p++;
        for (int k = 0; k < 2 && o + 1 < cap; k++) out[o++] = '_';
    }
    if (cap) out[o] = '\0';
}

int tracker_init(Tracker *tr, const char *out, const char *model_name, CkError *err) {
    memset(tr, 0, sizeof *tr);
    snprintf(tr->model_name, sizeof tr->model_name, "%s", model_name);
    char sanitized[1024];
    tracker_sanitize_model_name(model_name, sanitized, sizeof sanitized);
    if (fileio_path(tr->dir, sizeof tr->dir, out, sanitized) != 0)
        return ck_fail(err, "%s/%s: path too long", out, sanitized);
    struct timeval now;
    gettimeofday(&now, NULL);
    tr->date = (double)now.tv_sec + (double)now.tv_usec / 1e6;
    tr->t_start = timer_seconds();
    return 0;
}

int tracker_add_samples(Tracker *tr, const McTask *task, Mc2Variant mc2, const char *test_path,
                        const McItem *items, const McItemResult *results, int n, CkError *err) {
    if (tr->n_tasks >= MC_TASK_COUNT) return ck_fail(err, "%s: too many tasks", task->name);
    TrackerTask *t = &tr->tasks[tr->n_tasks];
    memset(t, 0, sizeof *t);
    t->task = task->name;
    if (mc_samples_build(task, mc2, test_path, items, results, n, &t->lines, t->hash, err) != 0) {
        strbuf_free(&t->lines);
        return -1;
    }
    tr->n_tasks++;
    return 0;
}

/* datetime.now().isoformat() with ':' -> '-': local time, microseconds when not zero */
static void date_id(char *out, size_t cap) {
    struct timeval now;
    gettimeofday(&now, NULL);
    struct tm tm;
    time_t sec = now.tv_sec;
    localtime_r(&sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H-%M-%S", &tm);
    if (now.tv_usec && n < cap) snprintf(out + n, cap - n, ".%06ld", (long)now.tv_usec);
}

/* the results dict with what save_results_aggregated adds */
static cJSON *tracker_results(const Tracker *tr, const cJSON *results, double end) {
    cJSON *root = cJSON_Duplicate(results, 1);
    if (!root) return NULL;
    char sanitized[1024], total[40];
    tracker_sanitize_model_name(tr->model_name, sanitized, sizeof sanitized);
    pyjson_add_float(root, "date", tr->date);
    cJSON *hashes = cJSON_AddObjectToObject(root, "task_hashes");
    for (int i = 0; i < tr->n_tasks; i++)
        cJSON_AddStringToObject(hashes, tr->tasks[i].task, tr->tasks[i].hash);
    cJSON_AddStringToObject(root, "model_source", "cutkit");
    cJSON_AddStringToObject(root, "model_name", tr->model_name);
    cJSON_AddStringToObject(root, "model_name_sanitized", sanitized);
    cJSON_AddNullToObject(root, "system_instruction");
    cJSON_AddNullToObject(root, "system_instruction_sha");
    cJSON_AddFalseToObject(root, "fewshot_as_multiturn");
    cJSON_AddNullToObject(root, "chat_template");
    cJSON_AddNullToObject(root, "chat_template_sha");
    pyjson_add_float(root, "start_time", tr->t_start);
    pyjson_add_float(root, "end_time", end);
    pyjson_float_repr(end - tr->t_start, total); /* str(end_time - start_time) */
    cJSON_AddStringToObject(root, "total_evaluation_time_seconds", total);
    return root;
}

/* Writes text to dir/name atomically. */
static int write_file(const char *dir, const char *name, const char *text, size_t n, CkError *err) {
    char path[4200];
    if (fileio_path(path, sizeof path, dir, name) != 0)
        return ck_fail(err, "%s/%s: path too long", dir, name);
    return fileio_write_atomic(path, text ? text : "", n, err);
}

int tracker_write(Tracker *tr, const cJSON *results, CkError *err) {
    if (fileio_make_dirs(tr->dir, err) != 0) return -1;
    char date[64], name[512];
    date_id(date, sizeof date);
    /* the results first, then the samples, as the harness (the same date in every name) */
    cJSON *root = tracker_results(tr, results, timer_seconds());
    StrBuf text = {0};
    int rc = root && pyjson_dump(root, 2, &text) == 0 ? 0 : ck_fail(err, "out of memory");
    cJSON_Delete(root);
    snprintf(name, sizeof name, "results_%s.json", date);
    if (rc == 0) rc = write_file(tr->dir, name, text.p, text.n, err);
    if (rc == 0 && fileio_path(tr->results_path, sizeof tr->results_path, tr->dir, name) != 0)
        rc = ck_fail(err, "%s/%s: path too long", tr->dir, name);
    strbuf_free(&text);
    for (int i = 0; rc == 0 && i < tr->n_tasks; i++) {
        snprintf(name, sizeof name, "samples_%s_%s.jsonl", tr->tasks[i].task, date);
        rc = write_file(tr->dir, name, tr->tasks[i].lines.p, tr->tasks[i].lines.n, err);
    }
    return rc;
}

void tracker_free(Tracker *tr) {
    for (int i = 0; i < tr->n_tasks; i++) strbuf_free(&tr->tasks[i].lines);
    tr->n_tasks = 0;
}
