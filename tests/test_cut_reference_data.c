/* test_cut_reference_data.c — cutkit's CUT data pipeline (datasets/judgments.c: loading,
 * Align-P downsampling, construction with the reference's cutoff and EOS order) on the five
 * online-iteration files and Shepherd, with the Llama 2 tokenizer, against an independent
 * emulation of the reference's preprocessing (tests/fixtures/make_cut_reference_data.py,
 * sentencepiece): the counts by kind after downsampling, which positives are kept, and for
 * every record each sequence's length, prompt-mask length, final EOS and token ids (by
 * hash). Skipped when ../shared is absent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include "datasets/judgments.h"
#include "datasets/templates.h"
#include "util/hash.h"

enum { MAX_SHOWN = 5 };

typedef struct {
    const char *tag, *rel;
    JudgmentFormat fmt;
    int cutoffs[2]; /* 0 = none */
} RefFile;

static const RefFile FILES[] = {
    {"iter1", "data/cut/data/iter/train-alpaca-sample-iter1.json", JUDGMENTS_CUT_JSON, {2048, 256}},
    {"iter2", "data/cut/data/iter/train-alpaca-sample-iter2.json", JUDGMENTS_CUT_JSON, {2048, 0}},
    {"iter3", "data/cut/data/iter/train-alpaca-sample-iter3.json", JUDGMENTS_CUT_JSON, {2048, 0}},
    {"iter4", "data/cut/data/iter/train-alpaca-sample-iter4.json", JUDGMENTS_CUT_JSON, {2048, 0}},
    {"iter5", "data/cut/data/iter/train-alpaca-sample-iter5.json", JUDGMENTS_CUT_JSON, {2048, 0}},
    {"shepherd", "data/shepherd/human_data_for_model.jsonl", JUDGMENTS_SHEPHERD, {2048, 256}},
};

/* The per-record arrays of one file at one cutoff (the generator's names). */
enum { F_FLAGS, F_LEN_A, F_MASK_A, F_LEN_M, F_MASK_M, F_HASH_A, F_HASH_M, N_FIELDS };
static const char *const FIELD_NAMES[N_FIELDS] = {"flags",  "len_a",  "mask_a", "len_m",
                                                  "mask_m", "hash_a", "hash_m"};
enum { FLAG_NEGATIVE = 1, FLAG_KEPT = 2, FLAG_ERROR = 4, FLAG_EOS_A = 8, FLAG_EOS_M = 16 };

/* The generator's hash: the low 32 bits of FNV-1a 64 over the ids as int32 little endian. */
static int32_t ids_hash(const CutSequence *q) {
    if (q->n == 0) return 0;
    return (int32_t)(uint32_t)hash_fnv1a64(HASH_FNV1A64_OFFSET, q->tokens,
                                           (size_t)q->n * sizeof(int));
}

/* cutkit's values for one record, in the fixture's layout. */
static void record_values(const JudgmentRecord *r, const CutExample *ex, int kept, int eos,
                          int32_t v[N_FIELDS]) {
    const CutSequence *a = &ex->a, *m = &ex->m;
    v[F_FLAGS] = (ex->negative ? FLAG_NEGATIVE : 0) | (kept ? FLAG_KEPT : 0) |
                 (r->judgment && !strcmp(r->judgment, "$ERROR$") ? FLAG_ERROR : 0) |
                 (a->n && a->tokens[a->n - 1] == eos ? FLAG_EOS_A : 0) |
                 (m->n && m->tokens[m->n - 1] == eos ? FLAG_EOS_M : 0);
    v[F_LEN_A] = a->n;
    v[F_MASK_A] = a->prompt_len;
    v[F_LEN_M] = m->n;
    v[F_MASK_M] = ex->negative ? m->prompt_len : 0;
    v[F_HASH_A] = ids_hash(a);
    v[F_HASH_M] = ids_hash(m);
}

/* Compares every record of s at cutoff with the fixture; returns the number that differ. */
static int compare_records(const TestFixture *fx, const char *prefix, const JudgmentSet *s,
                           const CutExampleSet *set, const Template *tpl, const Tokenizer *tok,
                           int cutoff) {
    int32_t *want[N_FIELDS];
    for (int f = 0; f < N_FIELDS; f++) {
        char name[64];
        snprintf(name, sizeof name, "%s%s", prefix, FIELD_NAMES[f]);
        want[f] = malloc((size_t)s->n * sizeof(int32_t));
        test_fixture_read(fx, name, 'i', want[f], (size_t)s->n);
    }
    unsigned char *kept = calloc((size_t)s->n, 1);
    for (int i = 0; i < set->n; i++) kept[set->record[i]] = 1;
    int bad = 0, j = 0;
    for (int i = 0; i < s->n; i++) {
        CutExample ex;
        CkError err = {{0}};
        if (judgments_build_reference_example(tpl, &s->records[i], tok, cutoff, &ex, &err) != 0)
            fail_msg("%srecord %d: %s", prefix, i, err.msg);
        int32_t got[N_FIELDS];
        record_values(&s->records[i], &ex, kept[i], tok->eos_id, got);
        int differs = 0;
        for (int f = 0; f < N_FIELDS; f++) differs |= got[f] != want[f][i];
        /* the kept examples of the set are the same construction */
        if (kept[i]) {
            const CutExample *se = &set->examples[j++];
            differs |= se->a.n != ex.a.n || se->m.n != ex.m.n ||
                       memcmp(se->a.tokens, ex.a.tokens, (size_t)ex.a.n * sizeof(int)) ||
                       (ex.m.n && memcmp(se->m.tokens, ex.m.tokens, (size_t)ex.m.n * sizeof(int)));
        }
        if (differs && bad++ < MAX_SHOWN) {
            printf("  %srecord %d differs (cutkit / reference):", prefix, i);
            for (int f = 0; f < N_FIELDS; f++)
                printf(" %s %d/%d", FIELD_NAMES[f], got[f], want[f][i]);
            printf("\n");
        }
        judgments_example_free(&ex);
    }
    for (int f = 0; f < N_FIELDS; f++) free(want[f]);
    free(kept);
    return bad;
}

/* Checks one file at one cutoff: the counts, then every record. */
static int check_cutoff(const TestFixture *fx, const RefFile *rf, const JudgmentSet *s,
                        const Template *tpl, const Tokenizer *tok, int cutoff) {
    char prefix[48];
    snprintf(prefix, sizeof prefix, "%s.c%d.", rf->tag, cutoff);
    CutBuildOptions o;
    judgments_build_options_init(&o);
    o.cutoff = cutoff;
    o.align_p_ratio = 0.25; /* both released scripts: --downsample 0.25 */
    CutExampleSet set;
    CkError err = {{0}};
    if (judgments_build_examples(s, tpl, tok, &o, &set, &err) != 0)
        fail_msg("%s: %s", rf->tag, err.msg);
    const CutBuildStats *st = &set.stats;
    const int got[9] = {st->n_records,   st->n_positive,      st->n_negative,
                        st->n_error,     st->n_positive_kept, st->n_examples,
                        st->n_truncated, st->n_judgment_lost, st->n_response_cut};
    int32_t want[9];
    char name[64];
    snprintf(name, sizeof name, "%scounts", prefix);
    test_fixture_read(fx, name, 'i', want, 9);
    printf("  %-8s %5d %7d %4d %4d %6d %6d %8d %9d %4d %8d\n", rf->tag, cutoff, got[0], got[1],
           got[2], got[3], got[4], got[5], got[6], got[7], got[8]);
    int bad = 0;
    for (int k = 0; k < 9; k++)
        if (got[k] != want[k]) {
            printf("  %scounts[%d]: cutkit %d, reference %d\n", prefix, k, got[k], want[k]);
            bad++;
        }
    bad += compare_records(fx, prefix, s, &set, tpl, tok, cutoff);
    judgments_example_set_free(&set);
    return bad;
}

static void test_matches_reference_emulation(void **state) {
    (void)state;
    char *tok_path = test_shared_path("models/llama2-tokenizer/tokenizer.bin");
    if (!tok_path) skip();
    Tokenizer tok;
    Template tpl;
    CkError err = {{0}};
    assert_int_equal(tokenizer_load_llama2c_file(&tok, tok_path, 32000, &err), 0);
    assert_int_equal(template_default(&tpl, &err), 0);
    TestFixture fx = test_fixture_open(CUTKIT_SOURCE_DIR "/tests/fixtures/cut_reference_data.bin");
    printf("  file     cutoff records  pos  neg $ERROR$ P-kept examples truncated A=M "
           "resp-cut\n");
    int bad = 0, n_checked = 0;
    for (size_t f = 0; f < sizeof FILES / sizeof FILES[0]; f++) {
        char *path = test_shared_path(FILES[f].rel);
        if (!path) continue;
        JudgmentSet s;
        JudgmentLoadOptions keep = {0, 1}; /* the reference trains on "$ERROR$" judgments */
        assert_int_equal(judgments_load(&s, path, FILES[f].fmt, &keep, &err), 0);
        for (int c = 0; c < 2 && FILES[f].cutoffs[c]; c++) {
            bad += check_cutoff(&fx, &FILES[f], &s, &tpl, &tok, FILES[f].cutoffs[c]);
            n_checked += s.n;
        }
        judgments_free(&s);
        free(path);
    }
    printf("  %d records checked, %d differ\n", n_checked, bad);
    free(fx.data);
    template_free(&tpl);
    tokenizer_free(&tok);
    free(tok_path);
    assert_int_equal(bad, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_reference_emulation),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
