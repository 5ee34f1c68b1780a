/* demo_internal.h — what the demo's files share: its trainings, the folders of its seeds, the
 * seeds as child processes (demo_seeds.c) and the headline comparisons (demo_headline.c). */
#ifndef CK_DEMO_INTERNAL_H
#define CK_DEMO_INTERNAL_H

#include "reports/demo/demo.h"

/* One training of the demo. */
typedef struct {
    const char *name;     /* run folder and report label */
    const char *setting;  /* "mixed" or "offline" training set */
    const char *method;   /* on a corpus: mle-positive, mle-all, align-n; on the judgment file:
                             cut, forward-prediction, hindsight, dpo (`cutkit train --objective`) */
    double lambda, alpha; /* cut */
    const char *ablation; /* cut: one Table-4 switch ("no-detection"), or NULL for full CUT */
} DemoRun;

/* DPO's beta: the common default (Rafailov et al. 2023 use 0.1 to 0.5). */
#define DEMO_DPO_BETA 0.1

extern const DemoRun DEMO_RUNS[];
extern const int DEMO_N_RUNS;

/* The folder of seed i of o: OUT itself with one seed, else OUT/seed-S. Returns 0, or -1 when
 * it does not fit size. */
int demo_seed_dir(const DemoOptions *o, int i, char *buf, size_t size);

/* Runs every seed of o (o->n_seeds > 1) as the child `cutkit demo --seed S --no-report --out
 * OUT/seed-S`, at most o->jobs (0: two per core) at once, each child's output in
 * OUT/seed-S/demo.log. A seed that fails is reported in o->log with the end of its log and
 * the others go on. Returns 0 when every seed finished, or -1 with err (a seed failed, or a
 * stop was requested: the children are asked to stop and waited for). */
int demo_seeds_run(const DemoOptions *o, CkError *err);

/* Compares CUT's runs with the baselines on the items they share (each seed's test items,
 * pooled over the seeds) and writes report_dir/headline.md and headline.json atomically;
 * *markdown (when not NULL) gets headline.md's text (malloc'd). Returns 0, or -1 with err
 * when a run's per-item file is absent or malformed. */
int demo_headline_write(const DemoOptions *o, const char *report_dir, char **markdown,
                        CkError *err);

#endif
