/* test_synth.c — the synthetic judgment world: determinism by seed (same bytes), spans that
 * point at the wrong words, judgments that name the errors, held-out pairs absent from train,
 * the rule-based judge equal to the generator on every record and right on hand-made free
 * text, malformed instructions refused by name, the misconception and offline options, and
 * the files (synth_make, and the command writing the same bytes) loading with judgments_load
 * into buildable CUT examples (and cutkit train). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include "formats/embedded.h"
#include "datasets/judgments.h"
#include "datasets/synth.h"
#include "datasets/templates.h"

static char *dir;

static int setup(void **state) {
    (void)state;
    dir = test_temp_dir();
    return dir ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    int rc = test_remove_dir(dir);
    free(dir);
    return rc;
}

static SynthOptions small_options(uint64_t seed) {
    SynthOptions o = synth_default_options();
    o.seed = seed;
    o.n_train = 300;
    o.n_test = 100;
    o.n_warmup = 200;
    return o;
}

static void generate(SynthWorld *w, const SynthOptions *o) {
    CkError err = {{0}};
    int rc = synth_generate(w, o, &err);
    if (rc != 0) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
}

/* ---------------------------------------------------------------------------------------- */

static void test_determinism(void **state) {
    (void)state;
    SynthOptions o = small_options(7);
    SynthWorld a, b, c;
    generate(&a, &o);
    generate(&b, &o);
    o.seed = 8;
    generate(&c, &o);
    int differ = 0;
    for (int s = 0; s < 3; s++) {
        assert_int_equal(a.n[s], b.n[s]);
        for (int i = 0; i < a.n[s]; i++) {
            char *ja = synth_record_json(&a.records[s][i]);
            char *jb = synth_record_json(&b.records[s][i]);
            char *jc = synth_record_json(&c.records[s][i]);
            assert_string_equal(ja, jb);
            differ += strcmp(ja, jc) != 0;
            free(ja);
            free(jb);
            free(jc);
        }
    }
    assert_true(differ > 550); /* another seed, another world */
    synth_world_free(&a);
    synth_world_free(&b);
    synth_world_free(&c);

    /* the files: same seed, same bytes in every file, from the library and from the command */
    const char *files[] = {"train.jsonl",   "test.jsonl",        "warmup.jsonl",
                           "template.json", "instructions.json", "world.json"};
    char cmd[1200], out[700];
    o = small_options(5);
    o.n_train = 50;
    o.n_test = 20;
    o.n_warmup = 30;
    CkError err = {{0}};
    snprintf(out, sizeof out, "%s/w0", dir);
    assert_int_equal(synth_make(&a, &o, out, &err), 0);
    assert_int_equal(synth_count_negatives(&a, SYNTH_SPLIT_WARMUP), 15);
    synth_world_free(&a);
    snprintf(cmd, sizeof cmd,
             "'%s' datasets synth --out '%s/w1' --seed 5 --train 50 --test 20 --warmup 30",
             CUTKIT_BINARY, dir);
    char *err_out = NULL;
    assert_int_equal(test_run(cmd, NULL, &err_out), 0);
    assert_non_null(strstr(err_out, "warmup 30 (15 negative)"));
    free(err_out);
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char p0[700], p1[700];
        snprintf(p0, sizeof p0, "%s/w0/%s", dir, files[f]);
        snprintf(p1, sizeof p1, "%s/w1/%s", dir, files[f]);
        size_t n0, n1;
        char *t0 = test_read_file(p0, &n0), *t1 = test_read_file(p1, &n1);
        assert_non_null(t0);
        assert_non_null(t1);
        assert_int_equal(n0, n1);
        assert_memory_equal(t0, t1, n0);
        free(t0);
        free(t1);
    }
    /* a bad value is refused by name: by the library, and by the command with exit code 2 */
    o.misconception = 2;
    snprintf(out, sizeof out, "%s/bad", dir);
    assert_int_equal(synth_make(&a, &o, out, &err), -1);
    assert_non_null(strstr(err.msg, "misconception"));
    snprintf(cmd, sizeof cmd, "'%s' datasets synth --out '%s/bad' --misconception 2", CUTKIT_BINARY,
             dir);
    assert_int_equal(test_run(cmd, NULL, &err_out), 2);
    assert_non_null(strstr(err_out, "misconception"));
    free(err_out);
    /* a folder that cannot be created */
    snprintf(out, sizeof out, "%s/no/such/parent", dir);
    o.misconception = 0;
    assert_int_equal(synth_make(&a, &o, out, &err), -1);
    assert_non_null(strstr(err.msg, "cannot create"));
}

/* Counts the whole-word, case-sensitive occurrences of word in text. */
static int count_word(const char *text, const char *word) {
    int n = 0;
    size_t k = strlen(word);
    for (const char *p = strstr(text, word); p; p = strstr(p + 1, word)) {
        const int before =
            p == text || !((p[-1] >= 'a' && p[-1] <= 'z') || (p[-1] >= 'A' && p[-1] <= 'Z'));
        const char c = p[k];
        n += before && !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
    }
    return n;
}

static int count_words(const char *text) {
    int n = 0, in = 0;
    for (const char *p = text; *p; p++) {
        const int w = *p != ' ';
        n += w && !in;
        in = w;
    }
    return n;
}

/* Spans point at exactly the wrong words, outputs differ from the correct ones only there,
 * and the stories have the promised shape. */
static void test_spans_and_stories(void **state) {
    (void)state;
    SynthOptions o = small_options(11);
    SynthWorld w;
    generate(&w, &o);
    int n_neg = 0, n_two = 0, n_place = 0, n_total = 0;
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < w.n[s]; i++) {
            const SynthRecord *r = &w.records[s][i];
            const SynthFacts *f = &r->facts;
            n_total++;
            n_place += f->v[SYNTH_PLACE] >= 0;
            /* the correct story: 30-39 words, name, colour and object 2-3 times each */
            const int words = count_words(r->correct_output);
            assert_true(words >= 30 && words <= 39);
            for (int k = 0; k < 3; k++) {
                const int m = count_word(r->correct_output, synth_word((SynthKind)k, f->v[k]));
                assert_true(m >= 2 && m <= 3);
            }
            assert_int_equal(r->correct_output[0], ' ');
            int n_wrong = 0;
            for (int k = 0; k < SYNTH_N_KINDS; k++) n_wrong += r->wrong[k] >= 0;
            if (!r->judgment && !r->misconception) {
                assert_int_equal(n_wrong, 0);
                assert_int_equal(r->n_spans, 0);
                assert_string_equal(r->output, r->correct_output);
                continue;
            }
            if (r->judgment) {
                n_neg++;
                n_two += n_wrong == 2;
                assert_true(n_wrong == 1 || n_wrong == 2);
            }
            /* every span is a mention of a wrong value, and all its mentions are spanned */
            int spanned[SYNTH_N_KINDS] = {0};
            for (int j = 0; j < r->n_spans; j++) {
                const SynthSpan sp = r->spans[j];
                int hit = 0;
                for (int k = 0; k < SYNTH_N_KINDS; k++) {
                    const char *wrong =
                        r->wrong[k] >= 0 ? synth_word((SynthKind)k, r->wrong[k]) : NULL;
                    if (wrong && (size_t)(sp.end - sp.start) == strlen(wrong) &&
                        !memcmp(r->output + sp.start, wrong, strlen(wrong))) {
                        hit = 1;
                        spanned[k]++;
                    }
                }
                assert_true(hit);
            }
            for (int k = 0; k < SYNTH_N_KINDS; k++) {
                if (r->wrong[k] < 0) continue;
                /* the right value is gone from every mention */
                assert_int_equal(count_word(r->output, synth_word((SynthKind)k, f->v[k])), 0);
                assert_int_equal(spanned[k],
                                 count_word(r->output, synth_word((SynthKind)k, r->wrong[k])));
                assert_true(spanned[k] >= 1);
            }
            /* substituting the right words back gives the correct output */
            char rebuilt[1024] = "";
            int pos = 0;
            for (int j = 0; j < r->n_spans; j++) {
                strncat(rebuilt, r->output + pos, (size_t)(r->spans[j].start - pos));
                const char *wrong_text = r->output + r->spans[j].start;
                for (int k = 0; k < SYNTH_N_KINDS; k++) {
                    const char *wrong =
                        r->wrong[k] >= 0 ? synth_word((SynthKind)k, r->wrong[k]) : NULL;
                    if (wrong && !strncmp(wrong_text, wrong, strlen(wrong)) &&
                        (int)strlen(wrong) == r->spans[j].end - r->spans[j].start)
                        strcat(rebuilt, synth_word((SynthKind)k, f->v[k]));
                }
                pos = r->spans[j].end;
            }
            strcat(rebuilt, r->output + pos);
            assert_string_equal(rebuilt, r->correct_output);
        }
    }
    /* the rates, within generous binomial margins */
    printf("  %d records: %d negative (%d with two errors), %d with a place\n", n_total, n_neg,
           n_two, n_place);
    assert_true(n_place > 0.62 * n_total && n_place < 0.78 * n_total);
    assert_true(n_two > 0.3 * n_neg && n_two < 0.5 * n_neg);
    synth_world_free(&w);
}

static void test_judgments_name_errors(void **state) {
    (void)state;
    SynthOptions o = small_options(3);
    SynthWorld w;
    generate(&w, &o);
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < w.n[s]; i++) {
            const SynthRecord *r = &w.records[s][i];
            if (!r->judgment) continue;
            const SynthFacts *f = &r->facts;
            char want[512] = "";
            const char *name = synth_word(SYNTH_NAME, f->v[SYNTH_NAME]);
            const char *obj = synth_word(SYNTH_OBJECT, f->v[SYNTH_OBJECT]);
            for (int k = 0; k < SYNTH_N_KINDS; k++) {
                if (r->wrong[k] < 0) continue;
                const char *right = synth_word((SynthKind)k, f->v[k]);
                const char *wrong = synth_word((SynthKind)k, r->wrong[k]);
                char one[160];
                if (k == SYNTH_NAME)
                    snprintf(one, sizeof one, "The name should be %s, not %s.", right, wrong);
                else if (k == SYNTH_COLOUR)
                    snprintf(one, sizeof one, "The %s should be %s, not %s.", obj, right, wrong);
                else if (k == SYNTH_OBJECT)
                    snprintf(one, sizeof one, "%s should have a %s, not a %s.", name, right, wrong);
                else
                    snprintf(one, sizeof one, "The place should be the %s, not the %s.", right,
                             wrong);
                if (*want) strcat(want, " ");
                strcat(want, one);
            }
            assert_string_equal(r->judgment, want);
        }
    }
    synth_world_free(&w);
}

static void test_heldout_pairs(void **state) {
    (void)state;
    SynthOptions o = small_options(21);
    SynthWorld w;
    generate(&w, &o);
    int held = 0;
    for (int n = 0; n < SYNTH_N_NAMES; n++)
        for (int ob = 0; ob < SYNTH_N_OBJECTS; ob++) held += w.heldout[n][ob];
    assert_int_equal(held, SYNTH_N_NAMES * o.heldout_per_name);
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < w.n[s]; i++) {
            const SynthFacts *f = &w.records[s][i].facts;
            const int h = w.heldout[f->v[SYNTH_NAME]][f->v[SYNTH_OBJECT]];
            assert_int_equal(h, s == SYNTH_SPLIT_TEST);
            assert_int_equal(f->girl, f->v[SYNTH_NAME] < SYNTH_N_GIRLS);
        }
    }
    synth_world_free(&w);
}

/* The judge finds exactly what the generator wrote, on every record of three worlds. */
static void check_judge_on_world(const SynthWorld *w) {
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < w->n[s]; i++) {
            const SynthRecord *r = &w->records[s][i];
            char *judgment;
            SynthSpan *spans;
            int n_spans, n_errors;
            CkError err = {{0}};
            assert_int_equal(synth_judge_response(r->instruction, r->output, &judgment, &spans,
                                                  &n_spans, &n_errors, &err),
                             0);
            assert_int_equal(n_spans, r->n_spans);
            for (int j = 0; j < n_spans; j++) {
                assert_int_equal(spans[j].start, r->spans[j].start);
                assert_int_equal(spans[j].end, r->spans[j].end);
            }
            int n_wrong = 0;
            for (int k = 0; k < SYNTH_N_KINDS; k++) n_wrong += r->wrong[k] >= 0;
            assert_int_equal(n_errors, n_wrong);
            if (r->judgment)
                assert_string_equal(judgment, r->judgment);
            else if (!r->misconception)
                assert_null(judgment);
            free(judgment);
            free(spans);
            /* the correct output has no error, and the facts parse back */
            int n_correct_errors = -1;
            assert_int_equal(
                synth_count_errors(r->instruction, r->correct_output, &n_correct_errors, &err), 0);
            assert_int_equal(n_correct_errors, 0);
            SynthFacts f;
            assert_int_equal(synth_parse_instruction(r->instruction, &f, &err), 0);
            assert_memory_equal(&f, &r->facts, sizeof f);
        }
    }
}

static void test_judge_equals_generator(void **state) {
    (void)state;
    SynthOptions o = small_options(1);
    SynthWorld w;
    generate(&w, &o);
    check_judge_on_world(&w);
    synth_world_free(&w);
    o.misconception = 0.7;
    o.negatives_only = 1;
    o.seed = 2;
    generate(&w, &o);
    check_judge_on_world(&w);
    synth_world_free(&w);
}

/* Free text, hand-judged: case, plurals, word boundaries, several wrong values. */
static void test_judge_free_text(void **state) {
    (void)state;
    const char *ins =
        "Write a story about a girl named Mia who has a green kite and lives near the sea.";
    const char *resp =
        " Mia had a red kite. Sue flew the RED Kites near the park, and Tommy saw two boxes.";
    char *judgment;
    SynthSpan *spans;
    int n_spans, n_errors;
    CkError err = {{0}};
    assert_int_equal(synth_judge_response(ins, resp, &judgment, &spans, &n_spans, &n_errors, &err),
                     0);
    /* byte offsets from Python's str.find on the same text */
    const SynthSpan want[5] = {{11, 14}, {21, 24}, {34, 37}, {53, 57}, {77, 80}};
    assert_int_equal(n_spans, 5);
    for (int j = 0; j < 5; j++) {
        assert_int_equal(spans[j].start, want[j].start);
        assert_int_equal(spans[j].end, want[j].end);
    }
    assert_int_equal(n_errors, 4); /* Sue, red, box, park: "RED" is "red" again */
    assert_string_equal(
        judgment, "The name should be Mia, not Sue. The kite should be green, not red. Mia "
                  "should have a kite, not a box. The place should be the sea, not the park.");
    free(judgment);
    free(spans);
    /* a right response, and one without a place in the instruction: no place is wrong */
    assert_int_equal(synth_judge_response(ins, " Mia flew her green kites by the sea.", &judgment,
                                          &spans, &n_spans, &n_errors, &err),
                     0);
    assert_null(judgment);
    assert_int_equal(n_spans, 0);
    assert_int_equal(n_errors, 0);
    free(spans);
    assert_int_equal(synth_count_errors("write a story about a boy named Tom who has a blue "
                                        "ball.",
                                        " Tom played with his blue ball in the park. Tomato.",
                                        &n_errors, &err),
                     0);
    assert_int_equal(n_errors, 0);
}

static void expect_refused(const char *instruction, const char *fragment) {
    SynthFacts f;
    CkError err = {{0}};
    assert_int_equal(synth_parse_instruction(instruction, &f, &err), -1);
    printf("  \"%s\" -> %s\n", instruction, err.msg);
    assert_non_null(strstr(err.msg, fragment));
    int n;
    assert_int_equal(synth_count_errors(instruction, " Mia.", &n, &err), -1);
}

static void test_malformed_instructions(void **state) {
    (void)state;
    expect_refused("Write a poem about a girl named Mia who has a green kite.",
                   "expected 'story' at byte 8, found 'poem'");
    expect_refused("Write a story about a cat named Mia who has a green kite.",
                   "expected 'girl' or 'boy' at byte 22, found 'cat'");
    expect_refused("Write a story about a girl named Mia who has a kite.",
                   "expected a colour (red, blue, green, ...) at byte 47, found 'kite'");
    expect_refused("Write a story about a girl named Zed who has a green kite.", "expected a name");
    expect_refused("Write a story about a girl named Mia who has a green",
                   "expected an object (ball, kite, car, ...) at byte 52, found the end");
    expect_refused("Write a story about a girl named Mia who has a green kite and lives near "
                   "the moon.",
                   "expected a place");
    expect_refused("Write a story about a girl named Mia who has a green kite. Then stop.",
                   "expected the end (or 'and lives near the PLACE') after the object at byte 59, "
                   "found 'Then'");
    expect_refused("Write a story about a boy named Tom who has a red car and lives near the "
                   "zoo, far away.",
                   "expected the end after the place at byte 78, found 'far'");
    expect_refused("", "expected 'write' at byte 0, found the end");
}

/* --misconceived-negatives: a negative's one mistake is the misconception itself */
static void test_misconceived_negatives(void **state) {
    (void)state;
    SynthOptions o = small_options(11);
    o.misconception = 0.9;
    o.negatives_only = 1;
    o.misconceived_negatives = 1;
    SynthWorld w;
    generate(&w, &o);
    int n = 0;
    for (int s = SYNTH_SPLIT_TRAIN; s <= SYNTH_SPLIT_TEST; s++)
        for (int i = 0; i < w.n[s]; i++) {
            const SynthRecord *r = &w.records[s][i];
            const int obj = r->facts.v[SYNTH_OBJECT], mapped = w.misconceived[obj];
            if (!r->judgment || mapped == r->facts.v[SYNTH_COLOUR]) continue;
            n++;
            assert_int_equal(r->wrong[SYNTH_COLOUR], mapped);
            assert_int_equal(r->wrong[SYNTH_NAME], -1);
            assert_int_equal(r->wrong[SYNTH_OBJECT], -1);
            assert_int_equal(r->wrong[SYNTH_PLACE], -1);
            assert_true(count_word(r->output, synth_word(SYNTH_COLOUR, mapped)) >= 2);
        }
    assert_true(n > 0);
    synth_world_free(&w);
}

static void test_misconception_and_offline(void **state) {
    (void)state;
    SynthOptions o = small_options(9);
    SynthWorld plain, mis, off;
    generate(&plain, &o);
    o.misconception = 1.0;
    generate(&mis, &o);
    o.misconception = 0.0;
    o.negatives_only = 1;
    generate(&off, &o);
    int n_mis = 0, n_colour_wrong = 0;
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < plain.n[s]; i++) {
            const SynthRecord *p = &plain.records[s][i], *m = &mis.records[s][i],
                              *q = &off.records[s][i];
            /* the same draws: the same instructions and stories in every variant */
            assert_string_equal(p->instruction, m->instruction);
            assert_string_equal(p->instruction, q->instruction);
            assert_int_equal(p->story, m->story);
            assert_int_equal(p->misconception, 0);
            const int obj = m->facts.v[SYNTH_OBJECT], colour = m->facts.v[SYNTH_COLOUR];
            if (s == SYNTH_SPLIT_WARMUP && !m->judgment) {
                /* rate 1: every warm-up positive states the mapped colour unless it is right */
                const int mapped = mis.misconceived[obj];
                assert_int_equal(m->misconception, mapped != colour);
                if (mapped != colour) {
                    n_mis++;
                    assert_int_equal(m->wrong[SYNTH_COLOUR], mapped);
                    assert_true(count_word(m->output, synth_word(SYNTH_COLOUR, mapped)) >= 2);
                }
            }
            if (m->judgment && m->wrong[SYNTH_COLOUR] >= 0) {
                /* a wrong colour is the shown object's mapped colour whenever that is wrong */
                const int shown = m->wrong[SYNTH_OBJECT] >= 0 ? m->wrong[SYNTH_OBJECT] : obj;
                if (mis.misconceived[shown] != colour) {
                    n_colour_wrong++;
                    assert_int_equal(m->wrong[SYNTH_COLOUR], mis.misconceived[shown]);
                }
            }
            if (s == SYNTH_SPLIT_TRAIN) assert_non_null(q->judgment);
            if (s == SYNTH_SPLIT_TEST) assert_true((q->judgment == NULL) == (p->judgment == NULL));
            if (s == SYNTH_SPLIT_WARMUP) assert_int_equal(q->judgment != NULL, i % 2);
        }
    }
    printf("  misconception: %d warm-up positives, %d colour errors mapped\n", n_mis,
           n_colour_wrong);
    assert_true(n_mis > 50);
    assert_true(n_colour_wrong > 20);
    synth_world_free(&plain);
    synth_world_free(&mis);
    synth_world_free(&off);
}

/* The written files load with the generic JSONL loader and build CUT examples with the
 * written template and the embedded tokenizer; cutkit train accepts them. */
static void test_files_load_and_build(void **state) {
    (void)state;
    char cmd[1400], out[800];
    SynthOptions o = synth_default_options();
    o.seed = 4;
    o.n_train = 40;
    o.n_test = 16;
    o.n_warmup = 20;
    o.misconception = 0.5;
    SynthWorld w;
    CkError err = {{0}};
    snprintf(out, sizeof out, "%s/files", dir);
    assert_int_equal(synth_make(&w, &o, out, &err), 0);

    Tokenizer tok;
    size_t size;
    const void *data = embedded_tokenizer(&size);
    assert_int_equal(tokenizer_load_llama2c(&tok, data, size, 512, &err), 0);
    Template tpl;
    char path[800];
    snprintf(path, sizeof path, "%s/files/template.json", dir);
    assert_int_equal(template_load(&tpl, path, &err), 0);
    assert_string_equal(tpl.prompt_no_input, "Task: {instruction}\nStory:");
    const char *names[3] = {"train.jsonl", "test.jsonl", "warmup.jsonl"};
    for (int s = 0; s < 3; s++) {
        snprintf(path, sizeof path, "%s/files/%s", dir, names[s]);
        JudgmentSet set;
        int rc = judgments_load(&set, path, JUDGMENTS_JSONL, NULL, &err);
        if (rc != 0) fprintf(stderr, "%s\n", err.msg);
        assert_int_equal(rc, 0);
        assert_int_equal(set.n, w.n[s]);
        for (int i = 0; i < set.n; i++) {
            const SynthRecord *r = &w.records[s][i];
            assert_string_equal(set.records[i].instruction, r->instruction);
            assert_string_equal(set.records[i].output, r->output);
            if (r->judgment)
                assert_string_equal(set.records[i].judgment, r->judgment);
            else
                assert_null(set.records[i].judgment);
            CutExample ex;
            rc = judgments_build_example(&tpl, &set.records[i], &tok, 512, &ex, &err);
            if (rc != 0) fprintf(stderr, "%s\n", err.msg);
            assert_int_equal(rc, 0);
            assert_int_equal(ex.negative, r->judgment != NULL);
            assert_true(ex.a.n < 300 && ex.n_response > 40);
            judgments_example_free(&ex);
        }
        /* the extra fields are there for the tools that want them */
        char *text = test_read_file(path, NULL);
        char *nl = strchr(text, '\n');
        *nl = '\0';
        cJSON *first = cJSON_Parse(text);
        assert_non_null(cJSON_GetObjectItem(first, "error_spans"));
        assert_true(cJSON_IsString(cJSON_GetObjectItem(first, "correct_output")));
        assert_true(cJSON_IsObject(cJSON_GetObjectItem(first, "facts")));
        cJSON_Delete(first);
        free(text);
        judgments_free(&set);
    }
    snprintf(path, sizeof path, "%s/files/instructions.json", dir);
    char *text = test_read_file(path, NULL);
    cJSON *ins = cJSON_Parse(text);
    assert_int_equal(cJSON_GetArraySize(ins), 16);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(ins, 3), "instruction")->valuestring,
                        w.records[SYNTH_SPLIT_TEST][3].instruction);
    cJSON_Delete(ins);
    free(text);
    snprintf(path, sizeof path, "%s/files/world.json", dir);
    text = test_read_file(path, NULL);
    cJSON *world = cJSON_Parse(text);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(world, "heldout_pairs")),
                     SYNTH_N_NAMES * 2);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(world, "misconception_map"), "kite")->valuestring,
        synth_word(SYNTH_COLOUR, w.misconceived[1]));
    cJSON_Delete(world);
    free(text);
    template_free(&tpl);
    tokenizer_free(&tok);
    synth_world_free(&w);

    /* cutkit train reads them as the command's help says */
    snprintf(cmd, sizeof cmd,
             "cd '%s/files' && '%s' train --objective cut --judgments train.jsonl --template "
             "template.json --out run --steps 2 --warmup 0 --batch-size 4 --lora --threads 1",
             dir, CUTKIT_BINARY);
    char *err_out = NULL;
    int status = test_run(cmd, NULL, &err_out);
    if (status != 0) fprintf(stderr, "%s\n", err_out);
    assert_int_equal(status, 0);
    assert_non_null(strstr(err_out, "40 examples"));
    free(err_out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_spans_and_stories),
        cmocka_unit_test(test_judgments_name_errors),
        cmocka_unit_test(test_heldout_pairs),
        cmocka_unit_test(test_judge_equals_generator),
        cmocka_unit_test(test_judge_free_text),
        cmocka_unit_test(test_malformed_instructions),
        cmocka_unit_test(test_misconception_and_offline),
        cmocka_unit_test(test_misconceived_negatives),
        cmocka_unit_test(test_files_load_and_build),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
