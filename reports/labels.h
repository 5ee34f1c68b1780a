/* labels.h — how the paper layouts name a run, from its config.json alone: the method and its
 * objective (Table 2's "Method | Objective"), the CUT ablation it is (Table 4's "− L1"), and
 * the number of judgments or pairs it learned from (Table 6's #J, Figure 4's x axis). Each is
 * one table in labels.c, so that a new objective or ablation switch is one line. */
#ifndef CK_LABELS_H
#define CK_LABELS_H

#include <stddef.h>

#include "reports/rundir.h"

/* One training objective as `cutkit train --objective` records it in config.json. */
typedef struct {
    const char *objective; /* config.json "objective" */
    const char *method;    /* the paper's row name ("Forward Prediction") */
    const char *loss;      /* the paper's Objective column ("MLE", "DPO", "MLE+UT") */
} ObjectiveLabel;

/* The label of the run's objective: config.json's "objective" looked up in the table; a run
 * without config.json or without "objective" (an evaluation of a base model), or whose
 * objective is "base", is {"base", "Base", "-"}; an objective the table lacks is returned
 * with itself as the method and "?" as the loss (so that it still shows). */
ObjectiveLabel label_objective(const RunDir *rd);

/* One CUT ablation switch of Table 4 ([P4] §5.4): a boolean key of config.json. */
typedef struct {
    const char *key;    /* "no_l1" */
    const char *change; /* the row's name against full CUT ("− L1 (Misalign term)") */
} AblationLabel;

/* The ablation switches, in the paper's row order; *n gets their count. */
const AblationLabel *label_ablations(int *n);

/* 1 when the run's config.json sets ablation switch key: true (or a non-zero number) at the
 * top level or inside an object "ablation", "ablations" or "cut". */
int label_ablation_set(const RunDir *rd, const char *key);

/* Writes the run's Table-4 name into buf: "CUT" for CUT with no switch set, the changes of
 * the switches it sets joined by ", " for an ablated CUT, else the method (label_objective). */
void label_variant(const RunDir *rd, char *buf, size_t size);

/* Writes the run's Table-2 method into buf: the method, with the ablations of an ablated CUT
 * in parentheses ("CUT (− L1)"). */
void label_method(const RunDir *rd, char *buf, size_t size);

/* The number of judgments (CUT, ILF, an online iteration) or preference pairs (DPO) the run
 * trained on, from the first config.json key of labels.c's list that holds a number
 * ("judgments_used", "n_judgments", "cut_data/records", ...); NAN when none does (a base
 * model). */
double label_judgments(const RunDir *rd);

/* The Align-P downsampling ratio N = |Align-P| / |Align-N| of a CUT run: config.json's
 * "align_p_ratio" when it is a number; when it is "off" (no downsampling: the paper's
 * "full"), the ratio the data had, cut_data/positives_kept over cut_data/negatives, with *full
 * set to 1; NAN when neither is known. */
double label_align_p_ratio(const RunDir *rd, int *full);

#endif
