/* baselines.c — see baselines.h. */
#include "train/baselines.h"

#include <stdlib.h>
#include <string.h>

/* Builds r's first sequence (Align-N for a record with a judgment, else Align-P) into *seq,
 * moving it out of the example. */
static int build_sequence(const Template *tpl, const JudgmentRecord *r, const Tokenizer *tok,
                          int cutoff, CutSequence *seq, BaselineStats *st, CkError *err) {
    CutExample ex;
    if (judgments_build_reference_example(tpl, r, tok, cutoff, &ex, err) != 0) return -1;
    *seq = ex.a;
    memset(&ex.a, 0, sizeof ex.a);
    judgments_example_free(&ex);
    st->n_truncated += seq->n_cut > 0;
    return 0;
}

static void sequence_free(CutSequence *s) {
    free(s->tokens);
    free(s->trained);
    memset(s, 0, sizeof *s);
}

/* Forward Prediction's response: the response, the judgment heading, the judgment. */
static char *forward_output(const JudgmentRecord *r) {
    const char *j = r->judgment ? r->judgment : TEMPLATE_POSITIVE_JUDGMENT;
    const size_t a = strlen(r->output), h = strlen(TEMPLATE_FORWARD_JUDGMENT_HEADING);
    const size_t b = strlen(j);
    char *s = malloc(a + h + b + 1);
    if (!s) return NULL;
    memcpy(s, r->output, a);
    memcpy(s + a, TEMPLATE_FORWARD_JUDGMENT_HEADING, h);
    memcpy(s + a + h, j, b + 1);
    return s;
}

/* Sequence i of kind's data into *seq. */
static int mle_sequence(BaselineMle kind, const JudgmentSet *judgments, const PairSet *pairs, int i,
                        const Template *tpl, const Tokenizer *tok, int cutoff, CutSequence *seq,
                        BaselineStats *st, CkError *err) {
    if (kind == BASELINE_HINDSIGHT)
        return build_sequence(tpl, &judgments->records[i], tok, cutoff, seq, st, err);
    JudgmentRecord r = {0};
    char *owned = NULL;
    if (kind == BASELINE_FORWARD_PREDICTION) {
        r = judgments->records[i];
        r.output = owned = forward_output(&judgments->records[i]);
        if (!owned) return ck_fail(err, "out of memory");
    } else {
        const PairRecord *p = &pairs->records[i];
        r.instruction = p->instruction;
        r.input = p->input;
        r.output = p->chosen;
        r.source_index = p->line;
    }
    r.judgment = NULL; /* the plain template */
    r.has_score = 0;
    const int rc = build_sequence(tpl, &r, tok, cutoff, seq, st, err);
    free(owned);
    return rc;
}

/* Packs n sequences into a Corpus (taking their arrays' contents). */
static int to_corpus(CutSequence *seqs, int n, Corpus *c, CkError *err) {
    memset(c, 0, sizeof *c);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += (size_t)seqs[i].n;
    c->offsets = malloc(sizeof(int) * (size_t)(n + 1));
    c->tokens = malloc(sizeof(int) * (total + 1));
    c->train = malloc(total + 1);
    if (!c->offsets || !c->tokens || !c->train) {
        corpus_free(c);
        return ck_fail(err, "out of memory");
    }
    c->n_seqs = n;
    c->offsets[0] = 0;
    for (int i = 0; i < n; i++) {
        const int o = c->offsets[i];
        memcpy(c->tokens + o, seqs[i].tokens, sizeof(int) * (size_t)seqs[i].n);
        memcpy(c->train + o, seqs[i].trained, (size_t)seqs[i].n);
        c->offsets[i + 1] = o + seqs[i].n;
        if (seqs[i].n > c->max_len) c->max_len = seqs[i].n;
    }
    return 0;
}

int baselines_build_mle(BaselineMle kind, const JudgmentSet *judgments, const PairSet *pairs,
                        const Template *tpl, const Tokenizer *tok, int cutoff, Corpus *c,
                        BaselineStats *st, CkError *err) {
    memset(st, 0, sizeof *st);
    memset(c, 0, sizeof *c);
    const int n = kind == BASELINE_ILF_MLE ? pairs->n : judgments->n;
    if (n <= 0) return ck_fail(err, "nothing to train on: no records");
    CutSequence *seqs = calloc((size_t)n, sizeof *seqs);
    if (!seqs) return ck_fail(err, "out of memory");
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++)
        rc = mle_sequence(kind, judgments, pairs, i, tpl, tok, cutoff, &seqs[i], st, err);
    if (rc == 0) rc = to_corpus(seqs, n, c, err);
    if (rc == 0) st->n_sequences = n;
    for (int i = 0; i < n; i++) sequence_free(&seqs[i]);
    free(seqs);
    return rc;
}

void baselines_free_pairs(CutExample *ex, int n) {
    for (int i = 0; ex && i < n; i++) judgments_example_free(&ex[i]);
    free(ex);
}

int baselines_build_pairs(const PairSet *pairs, const Template *tpl, const Tokenizer *tok,
                          int cutoff, CutExample **out, BaselineStats *st, CkError *err) {
    memset(st, 0, sizeof *st);
    *out = NULL;
    CutExample *ex = calloc((size_t)pairs->n + 1, sizeof *ex);
    if (!ex) return ck_fail(err, "out of memory");
    int rc = 0;
    for (int i = 0; rc == 0 && i < pairs->n; i++) {
        const PairRecord *p = &pairs->records[i];
        JudgmentRecord r = {.instruction = p->instruction,
                            .input = p->input,
                            .output = p->chosen,
                            .source_index = p->line};
        ex[i].negative = 1;
        rc = build_sequence(tpl, &r, tok, cutoff, &ex[i].a, st, err);
        r.output = p->rejected;
        if (rc == 0) rc = build_sequence(tpl, &r, tok, cutoff, &ex[i].m, st, err);
        if (rc == 0) ex[i].n_response = 0;
        if (rc != 0) ck_wrap(err, "pair on line %d", p->line);
    }
    if (rc != 0) {
        baselines_free_pairs(ex, pairs->n);
        return -1;
    }
    st->n_sequences = pairs->n;
    *out = ex;
    return 0;
}
