/* mmlu_prompt.c — MMLU prompt strings, written from lm-evaluation-harness's task code:
 * lm_eval/tasks/mmlu/default/_default_template_yaml and mmlu_<subject>.yaml (0.4.x),
 * lm_eval/tasks/hendrycks_test.py at b281b09 (v1) and v0.3.0 (v0), and the assembly in
 * lm_eval/base.py / lm_eval/api/task.py of each. */
#include "datasets/mmlu_prompt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/pystr.h"

static const char *const PROMPT_NAMES[MMLU_N_PROMPTS] = {"current", "leaderboard", "harness-0.4.2",
                                                         "legacy"};

const char *mmlu_prompt_name(MmluPrompt p) {
    return p >= 0 && p < MMLU_N_PROMPTS ? PROMPT_NAMES[p] : NULL;
}

int mmlu_prompt_from_name(const char *name, MmluPrompt *p, CkError *err) {
    for (int i = 0; i < MMLU_N_PROMPTS; i++)
        if (strcmp(name, PROMPT_NAMES[i]) == 0) {
            *p = (MmluPrompt)i;
            return 0;
        }
    return ck_fail(err, "unknown MMLU template '%s' (current, leaderboard, harness-0.4.2, legacy)",
                   name);
}

int mmlu_description(MmluPrompt p, int subject, StrBuf *out) {
    const char *name = mmlu_subject_name(subject);
    if (p == MMLU_PROMPT_LEGACY || !name) return strbuf_put(out, "", 0);
    if (strbuf_puts(out, "The following are multiple choice questions (with answers) about "))
        return -1;
    /* the subject with its underscores as spaces: ' '.join(subject.split('_')) */
    for (const char *c = name; *c; c++)
        if (strbuf_put(out, *c == '_' ? " " : c, 1)) return -1;
    /* 0.4.2-0.4.3 rendered the description through Jinja without keep_trailing_newline,
     * which drops one trailing newline of the YAML's ".\n\n" */
    return strbuf_puts(out, p == MMLU_PROMPT_HARNESS_042 ? ".\n" : ".\n\n");
}

int mmlu_query(MmluPrompt p, const MmluItem *item, StrBuf *out) {
    static const char letters[] = "ABCD";
    int rc = 0;
    if (p == MMLU_PROMPT_LEGACY) {
        rc |= strbuf_puts(out, "Question: ");
        rc |= strbuf_puts(out, item->question);
        rc |= strbuf_puts(out, "\nChoices:");
    } else {
        size_t a, n;
        pystr_strip(item->question, strlen(item->question), &a, &n);
        rc |= strbuf_put(out, item->question + a, n);
    }
    for (int c = 0; c < MMLU_N_CHOICES; c++) {
        rc |= strbuf_printf(out, "\n%c. ", letters[c]);
        rc |= strbuf_puts(out, item->choices[c]);
    }
    rc |= strbuf_puts(out, "\nAnswer:");
    return rc ? -1 : 0;
}

const char *mmlu_choice(MmluPrompt p, const MmluItem *item, int c) {
    static const char *const letters[MMLU_N_CHOICES] = {"A", "B", "C", "D"};
    if (c < 0 || c >= MMLU_N_CHOICES) return NULL;
    return p == MMLU_PROMPT_LEGACY ? item->choices[c] : letters[c];
}

int mmlu_context(MmluPrompt p, const MmluItem *item, const MmluItem *const *shots, int n_shots,
                 StrBuf *out) {
    if (mmlu_description(p, item->subject, out)) return -1;
    for (int i = 0; i < n_shots; i++) {
        if (mmlu_query(p, shots[i], out) || strbuf_put(out, " ", 1) ||
            strbuf_puts(out, mmlu_choice(p, shots[i], shots[i]->answer)) ||
            strbuf_put(out, "\n\n", 2))
            return -1;
    }
    return mmlu_query(p, item, out);
}

int mmlu_continuation(MmluPrompt p, const MmluItem *item, int c, StrBuf *out) {
    const char *text = mmlu_choice(p, item, c);
    if (!text) return -1;
    return strbuf_put(out, " ", 1) || strbuf_puts(out, text) ? -1 : 0;
}

int mmlu_exemplars(const MmluSet *dev, int subject, int k, const MmluItem **shots, CkError *err) {
    const char *name = mmlu_subject_name(subject);
    if (!name) return ck_fail(err, "no MMLU subject %d", subject);
    if (k < 0 || dev->count[subject] < k)
        return ck_fail(err, "MMLU %s: %d-shot needs %d %s rows, the data has %d", name, k, k,
                       mmlu_split_name(dev->split), dev->count[subject]);
    for (int i = 0; i < k; i++) shots[i] = &dev->items[dev->first[subject] + i];
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* McDocs */

/* Fills d from item (d zeroed); returns 0 or -1 when out of memory. */
static int fill_doc(McDoc *d, const MmluItem *item, int index, MmluPrompt p) {
    StrBuf b = {0};
    char id[96];
    snprintf(id, sizeof id, "%s/%d", mmlu_subject_name(item->subject), index);
    d->line = item->line;
    d->gold = item->answer;
    if (!(d->id = strdup(id))) return -1;
    if (mmlu_query(p, item, &b)) {
        strbuf_free(&b);
        return -1;
    }
    if (!(d->question = strbuf_take(&b))) return -1;
    d->choices = calloc(MMLU_N_CHOICES, sizeof(char *));
    d->labels = calloc(MMLU_N_CHOICES, sizeof(int));
    if (!d->choices || !d->labels) return -1;
    d->n_choices = MMLU_N_CHOICES; /* only now: benchmarks_free walks the choices */
    for (int c = 0; c < MMLU_N_CHOICES; c++)
        if (!(d->choices[c] = strdup(mmlu_choice(p, item, c)))) return -1;
    d->labels[item->answer] = 1;
    return 0;
}

int mmlu_to_mc_docs(const MmluSet *set, MmluPrompt p, McDocSet *out, CkError *err) {
    memset(out, 0, sizeof *out);
    if (set->n == 0) return 0;
    out->docs = calloc((size_t)set->n, sizeof(McDoc));
    if (!out->docs) return ck_fail(err, "out of memory");
    for (int i = 0; i < set->n; i++) {
        const MmluItem *it = &set->items[i];
        out->n = i + 1; /* so that benchmarks_free releases a half-filled doc too */
        if (fill_doc(&out->docs[i], it, i - set->first[it->subject], p)) {
            benchmarks_free(out);
            return ck_fail(err, "out of memory");
        }
    }
    return 0;
}
