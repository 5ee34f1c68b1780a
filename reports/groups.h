/* groups.h — seeds as an axis: run directories whose config.json files agree on every
 * setting but the seed form one group, shown as one row (mean ± sd over the seeds).
 *
 * The rule. Two runs are seeds of one setting when both have a config.json with a numeric
 * "seed", the seeds differ, and the two config.json objects are equal (cJSON_Compare: any key
 * order, numbers with a relative tolerance of machine epsilon) once
 *   - the bookkeeping keys are removed (top level): "seed" (the axis), "label" (a name; a
 *     sweep's folder name holds the seed), "command" (the command line: --seed and --out),
 *     "steps_done" and "final_loss" (outcomes of the run, not settings), and "timestamp",
 *     "started", "finished", "hostname" (when and where it ran);
 *   - and every string value (at any depth) has the run's own directory replaced by "{run}",
 *     so that a path inside the run (a sweep's "{dir}/init.bin") is the same setting.
 * Everything else is a setting, "cutkit_version" and "ranks" included (another version or
 * rank count may compute differently). A run without config.json or without a numeric seed
 * is a group of its own; a second run with the same settings and the same seed starts a new
 * group (it repeats a seed, it does not add one). Groups keep the order of their first runs,
 * and runs inside a group the order given. */
#ifndef CK_GROUPS_H
#define CK_GROUPS_H

#include "reports/rundir.h"
#include "util/ck_error.h"

typedef struct {
    char *label;  /* run_group_label of its members (owned) */
    int n;        /* members */
    int *members; /* indices into the runs (owned) */
} RunGroup;

typedef struct {
    int n;
    RunGroup *groups;
} RunGroups;

/* 1 when key is one of the bookkeeping keys above (not a setting). */
int run_config_is_bookkeeping(const char *key);

/* Replaces dir (as given without trailing slashes, and by realpath) by "{run}" in every string
 * value under node, as the rule above does with a run's own directory. Returns 0, or -1 when
 * out of memory. */
int run_config_replace_dir(cJSON *node, const char *dir);

/* The run's settings: config.json without the bookkeeping keys and with the run's directory
 * replaced (the objects the rule above compares), or NULL without config.json (or when out
 * of memory). The caller deletes it. */
cJSON *run_config_settings(const RunDir *rd);

/* 1 when runs a and b are two seeds of one setting (the rule above). */
int run_same_setting(const RunDir *a, const RunDir *b);

/* Groups the n_runs runs into out (released with run_groups_free, also on failure). With
 * per_run set every run is its own group (a row per run). Fails only when out of memory. */
int run_groups_build(RunGroups *out, const RunDir *runs, int n_runs, int per_run, CkError *err);

/* Releases the groups. */
void run_groups_free(RunGroups *g);

/* The label of a group of runs[members[0..n)], malloc'd (NULL when out of memory): the label
 * all of them share; else their labels with each one's seed mention removed ("seed=2",
 * "seed_2", "s2", ... with one separator next to it: "lambda=1.1,seed=2" -> "lambda=1.1")
 * when those agree; else the longest common prefix of the labels without trailing separators;
 * else the first run's label. */
char *run_group_label(const RunDir *runs, const int *members, int n);

/* The group whose label is key, or that holds a run whose directory is key (as given, or the
 * same directory by realpath); -1 when none. */
int run_groups_find(const RunGroups *g, const RunDir *runs, const char *key);

#endif
