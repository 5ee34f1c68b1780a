/* labels.c — see labels.h. */
#include "reports/labels.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The paper's Table 2 rows ([P4] §5.1) and the demo's own baselines; "objective" values as
 * `cutkit train --objective` (and `cutkit demo`, `cutkit align-online`) record them. */
static const ObjectiveLabel OBJECTIVES[] = {
    {"base", "Base", "-"},
    {"forward-prediction", "Forward Prediction", "MLE"},
    {"hindsight", "Hindsight", "MLE"},
    {"ilf-mle", "ILF-MLE", "MLE"},
    {"ilf-dpo", "ILF-DPO", "DPO"},
    {"dpo", "DPO", "DPO"},
    {"cut", "CUT", "MLE+UT"},
    {"cut-online", "CUT online", "MLE+UT"},
    {"mle", "MLE", "MLE"},
    {"mle-positive", "MLE on positive responses", "MLE"},
    {"mle-all", "MLE on all responses", "MLE"},
    {"align-n", "Align-N only", "MLE"},
};

/* Table 4's rows ([P4] §5.4, Table 4), in its order. The keys are what `cutkit train`
 * writes for its ablation flags; change them here if the flags are named otherwise. */
static const AblationLabel ABLATIONS[] = {
    {"no_l1", "\xE2\x88\x92 L1 (Misalign term)"},
    {"no_align_p", "\xE2\x88\x92 Align-P (first part of L2)"},
    {"no_align_n_mle", "\xE2\x88\x92 Align-N MLE (second part of L2)"},
    {"no_detection", "\xE2\x88\x92 detection (UT on every Misalign token)"},
    {"no_dynamic_weight", "\xE2\x88\x92 dynamic weighting"},
};

/* Objects of config.json that may hold the ablation switches instead of the top level
 * (`cutkit train` writes them under "ablations"). */
static const char *const ABLATION_OBJECTS[] = {"ablation", "ablations", "cut"};

/* Where the number of judgments (or pairs) trained on may be, first match wins: an online
 * iteration's row (layout.c writes it from iter-K/done.json), explicit counts, then the data
 * summaries `cutkit train` records. */
static const char *const JUDGMENT_KEYS[] = {
    "judgments_used",
    "n_judgments",
    "pairs_used",
    "n_pairs",
    "cut_data/records",
    "objective_data/pairs",
    "objective_data/records",
};

ObjectiveLabel label_objective(const RunDir *rd) {
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(rd->json[RUN_CONFIG], "objective");
    if (!cJSON_IsString(o) || !o->valuestring[0]) return OBJECTIVES[0];
    for (size_t i = 0; i < sizeof OBJECTIVES / sizeof OBJECTIVES[0]; i++)
        if (!strcmp(OBJECTIVES[i].objective, o->valuestring)) return OBJECTIVES[i];
    return (ObjectiveLabel){o->valuestring, o->valuestring, "?"};
}

const AblationLabel *label_ablations(int *n) {
    *n = (int)(sizeof ABLATIONS / sizeof ABLATIONS[0]);
    return ABLATIONS;
}

static int is_on(const cJSON *v) {
    return cJSON_IsTrue(v) || (cJSON_IsNumber(v) && v->valuedouble != 0);
}

int label_ablation_set(const RunDir *rd, const char *key) {
    const cJSON *config = rd->json[RUN_CONFIG];
    if (is_on(cJSON_GetObjectItemCaseSensitive(config, key))) return 1;
    for (size_t i = 0; i < sizeof ABLATION_OBJECTS / sizeof ABLATION_OBJECTS[0]; i++) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(config, ABLATION_OBJECTS[i]);
        if (cJSON_IsObject(o) && is_on(cJSON_GetObjectItemCaseSensitive(o, key))) return 1;
    }
    return 0;
}

/* The changes of the switches rd sets, joined by ", " into buf; returns how many. */
static int ablation_changes(const RunDir *rd, char *buf, size_t size) {
    int n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof ABLATIONS / sizeof ABLATIONS[0]; i++) {
        if (!label_ablation_set(rd, ABLATIONS[i].key)) continue;
        size_t used = strlen(buf);
        snprintf(buf + used, size - used, "%s%s", n++ ? ", " : "", ABLATIONS[i].change);
    }
    return n;
}

void label_variant(const RunDir *rd, char *buf, size_t size) {
    ObjectiveLabel l = label_objective(rd);
    if (!strcmp(l.objective, "cut") && ablation_changes(rd, buf, size) > 0) return;
    snprintf(buf, size, "%s", l.method);
}

void label_method(const RunDir *rd, char *buf, size_t size) {
    ObjectiveLabel l = label_objective(rd);
    char changes[512];
    if (!strcmp(l.objective, "cut") && ablation_changes(rd, changes, sizeof changes) > 0)
        snprintf(buf, size, "%s (%s)", l.method, changes);
    else
        snprintf(buf, size, "%s", l.method);
}

double label_judgments(const RunDir *rd) {
    for (size_t i = 0; i < sizeof JUDGMENT_KEYS / sizeof JUDGMENT_KEYS[0]; i++) {
        double v = rundir_json_number(rd->json[RUN_CONFIG], JUDGMENT_KEYS[i]);
        if (isfinite(v)) return v;
    }
    return NAN;
}

double label_align_p_ratio(const RunDir *rd, int *full) {
    *full = 0;
    const cJSON *config = rd->json[RUN_CONFIG];
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(config, "align_p_ratio");
    if (cJSON_IsNumber(r)) return r->valuedouble;
    if (!cJSON_IsString(r) || strcmp(r->valuestring, "off") != 0) return NAN;
    double pos = rundir_json_number(config, "cut_data/positives_kept");
    double neg = rundir_json_number(config, "cut_data/negatives");
    if (!isfinite(pos) || !isfinite(neg) || neg <= 0) return NAN;
    *full = 1;
    return pos / neg;
}
