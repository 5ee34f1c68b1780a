/* harness.c — the versions of lm-evaluation-harness that `eval mc` can follow (see harness.h). */
#include "eval/harness.h"

#include <stdlib.h>
#include <string.h>

#include "datasets/mmlu_prompt.h"
#include "util/strbuf.h"

#define NONE    HARNESS_BOS_NONE
#define TOK     HARNESS_BOS_TOKENIZER
#define V2      MC2_BEFORE_FIRST_FALSE
#define V3      MC2_LABELS
#define CURRENT MMLU_PROMPT_CURRENT

/* oldest first; the names and order of HARNESS_VERSION_CHOICES */
static const HarnessVersion VERSIONS[] = {
    /* the Open LLM Leaderboard v1's pin */
    {"b281b09", NONE, V2, MC_DRAW_B281B09, MMLU_PROMPT_LEADERBOARD, 1},
    {"0.4.0", NONE, V2, MC_DRAW_V04, CURRENT, 0},
    {"0.4.1", NONE, V2, MC_DRAW_V04, CURRENT, 0},
    /* the description through Jinja lost one newline */
    {"0.4.2", NONE, V2, MC_DRAW_V04, MMLU_PROMPT_HARNESS_042, 0},
    {"0.4.3", NONE, V2, MC_DRAW_V04, MMLU_PROMPT_HARNESS_042, 0},
    {"0.4.4", NONE, V2, MC_DRAW_V04, CURRENT, 0},
    {"0.4.5", NONE, V2, MC_DRAW_V04, CURRENT, 0},
    {"0.4.6", NONE, V2, MC_DRAW_V04, CURRENT, 0},
    {"0.4.7", NONE, V2, MC_DRAW_V04, CURRENT, 0},
    {"0.4.8", NONE, V2, MC_DRAW_V04, CURRENT, 0},
    /* MC2 3.0 from here; BOS still off by default */
    {"0.4.9", NONE, V3, MC_DRAW_V04, CURRENT, 0},
    {"0.4.9.1", NONE, V3, MC_DRAW_V04, CURRENT, 0},
    /* add_bos_token=None: the tokenizer's default decides */
    {"0.4.9.2", TOK, V3, MC_DRAW_V04, CURRENT, 0},
    {"0.4.10", TOK, V3, MC_DRAW_V04, CURRENT, 0},
    {"0.4.11", TOK, V3, MC_DRAW_V04, CURRENT, 0},
    {"0.4.12", TOK, V3, MC_DRAW_V04, CURRENT, 0},
    {"current", TOK, V3, MC_DRAW_V04, CURRENT, 0},
};

enum { N_VERSIONS = sizeof VERSIONS / sizeof VERSIONS[0] };

int harness_version_count(void) {
    return N_VERSIONS;
}

const HarnessVersion *harness_version_at(int i) {
    return i >= 0 && i < N_VERSIONS ? &VERSIONS[i] : NULL;
}

const HarnessVersion *harness_version_find(const char *name) {
    for (int i = 0; name && i < N_VERSIONS; i++)
        if (strcmp(VERSIONS[i].name, name) == 0) return &VERSIONS[i];
    return NULL;
}

int harness_version_parse(const char *name, const HarnessVersion **out, CkError *err) {
    *out = harness_version_find(name ? name : HARNESS_VERSION_DEFAULT);
    if (*out) return 0;
    StrBuf known = {0};
    for (int i = 0; i < N_VERSIONS; i++)
        strbuf_printf(&known, "%s%s", i ? ", " : "", VERSIONS[i].name);
    ck_fail(err, "--harness-version: unknown version '%s' (known: %s)", name,
            known.p ? known.p : "");
    strbuf_free(&known);
    return -1;
}

int harness_bos(const HarnessVersion *v, const Tokenizer *t, int *bos, CkError *err) {
    *bos = 0;
    if (v->bos == HARNESS_BOS_NONE) return 0;
    /* what encode(text) adds in front by default: BOS exactly when the encoding with special
     * tokens is t's BOS, then the plain one (then whatever suffix, such as an EOS) */
    int *with = NULL, *plain = NULL, n_with = 0, n_plain = 0;
    int rc = tokenizer_encode_special(t, "a", 1, &with, &n_with, err);
    if (rc == 0) rc = tokenizer_encode_special(t, "a", 0, &plain, &n_plain, err);
    if (rc == 0)
        *bos = t->bos_id >= 0 && n_with >= n_plain + 1 && with[0] == t->bos_id &&
               memcmp(with + 1, plain, sizeof(int) * (size_t)n_plain) == 0;
    free(with);
    free(plain);
    return rc == 0 ? 0 : ck_wrap(err, "the tokenizer's default BOS");
}

double harness_task_version(const HarnessVersion *v, const McTask *task) {
    if (v && v->draw == MC_DRAW_B281B09) /* the task classes' VERSION */
        return task->is_truthfulqa || task->kind == MC_KIND_MMLU ? 1.0 : 0.0;
    switch (task->id) {
    case MC_TRUTHFULQA_MC1:
        return 2.0;
    case MC_TRUTHFULQA_MC2:
        return v->mc2 == MC2_LABELS ? 3.0 : 2.0;
    default:
        return 1.0;
    }
}
