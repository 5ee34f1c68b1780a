/* harness.c — the versions of lm-evaluation-harness that `eval mc` can follow (see harness.h). */
#include "eval/harness.h"

#include <stdlib.h>
#include <string.h>

#include "util/strbuf.h"

/* oldest first; the names and order of HARNESS_VERSION_CHOICES */
static const HarnessVersion VERSIONS[] = {
    {"0.4.0", HARNESS_BOS_NONE, MC2_BEFORE_FIRST_FALSE},
    {"0.4.1", HARNESS_BOS_NONE, MC2_BEFORE_FIRST_FALSE},
    {"0.4.2", HARNESS_BOS_NONE, MC2_BEFORE_FIRST_FALSE},
    {"0.4.3", HARNESS_BOS_NONE, MC2_BEFORE_FIRST_FALSE},
    {"0.4.4", HARNESS_BOS_NONE, MC2_BEFORE_FIRST_FALSE},
    {"0.4.5", HARNESS_BOS_NONE, MC2_BEFORE_FIRST_FALSE},
    {"0.4.6", HARNESS_BOS_NONE, MC2_BEFORE_FIRST_FALSE},
    {"0.4.7", HARNESS_BOS_NONE, MC2_BEFORE_FIRST_FALSE},
    {"0.4.8", HARNESS_BOS_NONE, MC2_BEFORE_FIRST_FALSE},
    /* MC2 3.0 from here; BOS still off by default */
    {"0.4.9", HARNESS_BOS_NONE, MC2_LABELS},
    {"0.4.9.1", HARNESS_BOS_NONE, MC2_LABELS},
    /* add_bos_token=None: the tokenizer's default decides */
    {"0.4.9.2", HARNESS_BOS_TOKENIZER, MC2_LABELS},
    {"0.4.10", HARNESS_BOS_TOKENIZER, MC2_LABELS},
    {"0.4.11", HARNESS_BOS_TOKENIZER, MC2_LABELS},
    {"0.4.12", HARNESS_BOS_TOKENIZER, MC2_LABELS},
    {"current", HARNESS_BOS_TOKENIZER, MC2_LABELS},
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
    switch (task->id) {
    case MC_TRUTHFULQA_MC1:
        return 2.0;
    case MC_TRUTHFULQA_MC2:
        return v->mc2 == MC2_LABELS ? 3.0 : 2.0;
    default:
        return 1.0;
    }
}
