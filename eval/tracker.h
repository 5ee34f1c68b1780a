/* tracker.h — the files lm-evaluation-harness's EvaluationTracker writes under --output_path
 * OUT (lm_eval/loggers/evaluation_tracker.py, 0.4.x):
 *   OUT/<model>/results_<date>.json            the results dict (json.dumps, indent 2) with
 *                                              task_hashes and the tracker's fields added
 *   OUT/<model>/samples_<task>_<date>.jsonl    with --log_samples: one record per doc
 * <model> is the model name (the adapter's path when there is one, as the harness takes
 * peft= before pretrained=) with every run of the characters "<>:/|\?*[] replaced by "__"
 * (utils.sanitize_model_name); <date> is datetime.now().isoformat() with ':' -> '-' at the
 * time of writing. A run writes new files under a new date; nothing is overwritten. */
#ifndef CK_TRACKER_H
#define CK_TRACKER_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "eval/mc.h"
#include "util/ck_error.h"
#include "util/strbuf.h"

typedef struct {
    const char *task;
    StrBuf lines;  /* the samples file's text */
    char hash[65]; /* the tracker's task hash */
} TrackerTask;

typedef struct {
    char model_name[1024];
    char dir[4096]; /* OUT/<model> */
    double t_start; /* monotonic seconds at tracker_init (the harness's perf_counter) */
    double date;    /* seconds since the epoch at tracker_init (the results' "date") */
    int n_tasks;    /* tasks with samples */
    TrackerTask tasks[MC_TASK_COUNT];
    char results_path[4096]; /* the results file, after tracker_write */
} Tracker;

/* Writes name with the harness's sanitize_model_name applied into out (capacity cap). */
void tracker_sanitize_model_name(const char *name, char *out, size_t cap);

/* Starts a tracker for OUT and model_name (the clock starts). Fails when the path is too long. */
int tracker_init(Tracker *tr, const char *out, const char *model_name, CkError *err);

/* Keeps the samples of one task (mc_samples_build) for tracker_write. */
int tracker_add_samples(Tracker *tr, const McTask *task, Mc2Variant mc2, const char *test_path,
                        const McItem *items, const McItemResult *results, int n, CkError *err);

/* Writes the samples files of the kept tasks and the results file: a copy of results with
 * "date", "task_hashes" (of the tasks with samples, else {}) and the tracker's fields
 * (model_source "cutkit", model_name, model_name_sanitized, system_instruction and its sha,
 * fewshot_as_multiturn, chat_template and its sha, start_time, end_time,
 * total_evaluation_time_seconds). Each file atomically (util/fileio.h). */
int tracker_write(Tracker *tr, const cJSON *results, CkError *err);

/* Releases what tr holds; safe on a zeroed tracker. */
void tracker_free(Tracker *tr);

#endif
