/* test_rouge.c — ROUGE (eval/rouge.h, eval/porter.h): hand-computed cases of each type with
 * and without stemming; NLTK's PorterStemmer and an independent Python implementation of
 * rouge-score (tests/fixtures/make_rouge_fixture.py → rouge_ref.json) to 1e-12; the pipeline's
 * files, its bad-input errors (nothing written) and the command's exit codes. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval/porter.h"
#include "eval/rouge.h"
#include "test_util.h"

#define TOL 1e-12

static void assert_prf(const RougeScore *s, double p, double r, double f) {
    assert_close(s->precision, p, TOL);
    assert_close(s->recall, r, TOL);
    assert_close(s->fmeasure, f, TOL);
}

static void score(const char *ref, const char *pred, int stem, RougeScore out[ROUGE_N_TYPES]) {
    CkError err = {{0}};
    assert_int_equal(rouge_score_pair(ref, pred, stem, out, &err), 0);
}

/* Space-separated tokens of text, for comparisons. */
static void tokens_text(const char *text, int stem, char *buf, size_t cap) {
    RougeTokens t;
    CkError err = {{0}};
    assert_int_equal(rouge_tokenize(text, stem, &t, &err), 0);
    buf[0] = '\0';
    for (int i = 0; i < t.n; i++) {
        if (i) strncat(buf, " ", cap - strlen(buf) - 1);
        strncat(buf, t.chars + t.start[i], cap - strlen(buf) - 1);
    }
    rouge_tokens_free(&t);
}

static void test_porter_hand(void **state) {
    (void)state;
    /* the paper's examples, and NLTK_EXTENSIONS where it departs from them (ties, dies, sky) */
    const char *cases[][2] = {
        {"caresses", "caress"}, {"ponies", "poni"},      {"ties", "tie"},
        {"cats", "cat"},        {"agreed", "agre"},      {"plastered", "plaster"},
        {"motoring", "motor"},  {"hopping", "hop"},      {"falling", "fall"},
        {"filing", "file"},     {"happy", "happi"},      {"sky", "sky"},
        {"skies", "sky"},       {"dies", "die"},         {"spied", "spi"},
        {"dying", "die"},       {"generously", "gener"}, {"relational", "relat"},
        {"yyyy", "yyyi"},       {"1990s", "1990"},       {"at", "at"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char w[32];
        size_t n = strlen(cases[i][0]);
        memcpy(w, cases[i][0], n);
        n = porter_stem(w, n);
        w[n] = '\0';
        if (strcmp(w, cases[i][1]) != 0)
            printf("  %s -> %s, expected %s\n", cases[i][0], w, cases[i][1]);
        assert_string_equal(w, cases[i][1]);
    }
}

static void test_tokenize_hand(void **state) {
    (void)state;
    char buf[256];
    tokens_text("Hello, World! it's 2nd-hand", 0, buf, sizeof buf);
    assert_string_equal(buf, "hello world it s 2nd hand");
    /* str.lower(): U+0130 -> "i" + combining dot (a separator), U+212A -> "k"; é separates */
    tokens_text("\xC4\xB0stanbul \xE2\x84\xAA"
                "elvin caf\xC3\xA9s",
                0, buf, sizeof buf);
    assert_string_equal(buf, "i stanbul kelvin caf s");
    /* stemming only touches tokens longer than 3 characters: "ties" -> "tie", "ran" stays */
    tokens_text("The runners ran TIES running", 1, buf, sizeof buf);
    assert_string_equal(buf, "the runner ran tie run");
    tokens_text("", 1, buf, sizeof buf);
    assert_string_equal(buf, "");
    tokens_text(" \n...\n", 0, buf, sizeof buf);
    assert_string_equal(buf, "");
}

static void test_rouge_n_hand(void **state) {
    (void)state;
    RougeScore s[ROUGE_N_TYPES];
    /* ref: the cat sat on the mat (6); pred: the cat the dog (4) */
    score("The cat sat on the mat.", "the cat the dog", 0, s);
    assert_prf(&s[ROUGE_1], 3.0 / 4, 3.0 / 6, 0.6);  /* the x2 + cat */
    assert_prf(&s[ROUGE_2], 1.0 / 3, 1.0 / 5, 0.25); /* the-cat */
    /* clipped counts: "the" 4 times against twice */
    score("the the the the", "the the", 0, s);
    assert_prf(&s[ROUGE_1], 1, 0.5, 2.0 / 3);
    assert_prf(&s[ROUGE_2], 1, 1.0 / 3, 0.5);
    /* one token: no bigrams on either side, max(count, 1) keeps 0/1 */
    score("cat", "cat", 0, s);
    assert_prf(&s[ROUGE_1], 1, 1, 1);
    assert_prf(&s[ROUGE_2], 0, 0, 0);
}

static void test_rouge_l_hand(void **state) {
    (void)state;
    RougeScore s[ROUGE_N_TYPES];
    score("The cat sat on the mat.", "the cat the dog", 0, s);
    assert_prf(&s[ROUGE_L], 3.0 / 4, 3.0 / 6, 0.6);    /* the cat ... the */
    assert_prf(&s[ROUGE_LSUM], 3.0 / 4, 3.0 / 6, 0.6); /* one line: the same */
    score("a b c d e", "e d c b a", 0, s);
    assert_prf(&s[ROUGE_L], 0.2, 0.2, 0.2);
}

static void test_rouge_lsum_hand(void **state) {
    (void)state;
    RougeScore s[ROUGE_N_TYPES];
    /* sentences swapped: the LCS of the whole keeps one, the union-LCS both */
    score("a b\nc d", "c d\na b", 0, s);
    assert_prf(&s[ROUGE_L], 0.5, 0.5, 0.5);
    assert_prf(&s[ROUGE_LSUM], 1, 1, 1);
    /* Lin (2004) §3.2: r = w1..w5, c1 = w1 w2 w6 w7 w8, c2 = w1 w3 w8 w9 w5: union w1 w2 w3 w5 */
    score("w1 w2 w3 w4 w5", "w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5", 0, s);
    assert_prf(&s[ROUGE_LSUM], 0.4, 0.8, 8.0 / 15);
    /* double counting guard: the prediction's one "a" is a hit once, not once per sentence */
    score("a a\na", "a", 0, s);
    assert_prf(&s[ROUGE_LSUM], 1, 1.0 / 3, 0.5);
    /* empty lines and "\r\n" add nothing */
    score("a b\r\n\r\n\nc d", "c d\n\na b", 0, s);
    assert_prf(&s[ROUGE_LSUM], 1, 1, 1);
}

static void test_stemming_and_empty(void **state) {
    (void)state;
    RougeScore s[ROUGE_N_TYPES];
    /* the runner were run / a runner run: 2 of 3 and of 4 unigrams with stemming, none without */
    score("the runners were running", "a runner runs", 1, s);
    assert_prf(&s[ROUGE_1], 2.0 / 3, 0.5, 4.0 / 7);
    assert_prf(&s[ROUGE_L], 2.0 / 3, 0.5, 4.0 / 7);
    score("the runners were running", "a runner runs", 0, s);
    for (int t = 0; t < ROUGE_N_TYPES; t++) assert_prf(&s[t], 0, 0, 0);
    const char *empties[][2] = {{"", ""}, {"", "a b"}, {"a b", ""}, {" \n", "a"}, {"...", "!"}};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        score(empties[i][0], empties[i][1], 1, s);
        for (int t = 0; t < ROUGE_N_TYPES; t++) assert_prf(&s[t], 0, 0, 0);
    }
    assert_close(rouge_fmeasure(0, 0), 0, 0);
}

static void test_multi_reference(void **state) {
    (void)state;
    const char *refs[] = {"x y z", "the cat", "the cat"};
    RougeScore s[ROUGE_N_TYPES];
    int best[ROUGE_N_TYPES];
    CkError err = {{0}};
    assert_int_equal(rouge_score_multi(refs, 3, "the cat sat", 0, s, best, &err), 0);
    assert_int_equal(best[ROUGE_1], 1); /* the first of the two equal maxima */
    assert_prf(&s[ROUGE_1], 2.0 / 3, 1, 0.8);
}

/* ---- the independent implementation ------------------------------------------------------ */

static cJSON *load_fixture(void) {
    size_t n;
    char *text = test_read_file(CUTKIT_SOURCE_DIR "/tests/fixtures/rouge_ref.json", &n);
    assert_non_null(text);
    cJSON *doc = cJSON_Parse(text);
    free(text);
    assert_non_null(doc);
    return doc;
}

static void test_porter_matches_nltk(void **state) {
    (void)state;
    cJSON *doc = load_fixture();
    const char *p = cJSON_GetObjectItem(doc, "stems")->valuestring;
    int n = 0, bad = 0;
    char word[128], expected[128];
    for (const char *line = p; *line;) {
        const char *nl = strchr(line, '\n');
        assert_non_null(nl);
        assert_int_equal(sscanf(line, "%127s %127s", word, expected), 2);
        size_t k = porter_stem(word, strlen(word));
        word[k] = '\0';
        if (strcmp(word, expected) != 0 && bad++ < 10)
            printf("  stem of line %d: %s, nltk %s\n", n + 1, word, expected);
        n++;
        line = nl + 1;
    }
    printf("  %d words, %d differ from %s\n", n, bad,
           cJSON_GetObjectItem(doc, "stemmer_reference")->valuestring);
    assert_true(n > 5000);
    assert_int_equal(bad, 0);
    cJSON_Delete(doc);
}

static void test_tokenize_matches_python(void **state) {
    (void)state;
    cJSON *doc = load_fixture();
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(doc, "tokenize")) {
        char got[1024], want[1024] = "";
        tokens_text(cJSON_GetObjectItem(c, "text")->valuestring,
                    cJSON_IsTrue(cJSON_GetObjectItem(c, "stem")), got, sizeof got);
        const cJSON *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItem(c, "tokens")) {
            if (want[0]) strcat(want, " ");
            strcat(want, t->valuestring);
        }
        assert_string_equal(got, want);
    }
    cJSON_Delete(doc);
}

/* The fixture item's expected P/R/F of type t. */
static void expected_prf(const cJSON *item, RougeType t, double v[3]) {
    const cJSON *a = cJSON_GetObjectItem(cJSON_GetObjectItem(item, "scores"), rouge_type_name(t));
    for (int k = 0; k < 3; k++) v[k] = cJSON_GetArrayItem(a, k)->valuedouble;
}

static void score_item(const cJSON *item, RougeScore s[ROUGE_N_TYPES], int best[ROUGE_N_TYPES]) {
    const cJSON *ref = cJSON_GetObjectItem(item, "reference");
    const char *refs[16];
    int n = 0;
    if (cJSON_IsString(ref)) {
        refs[n++] = ref->valuestring;
    } else {
        const cJSON *e;
        cJSON_ArrayForEach(e, ref) if (n < 16) refs[n++] = e->valuestring;
    }
    CkError err = {{0}};
    assert_int_equal(
        rouge_score_multi(refs, n, cJSON_GetObjectItem(item, "prediction")->valuestring,
                          cJSON_IsTrue(cJSON_GetObjectItem(item, "stem")), s, best, &err),
        0);
}

static void test_scores_match_python(void **state) {
    (void)state;
    cJSON *doc = load_fixture();
    const cJSON *item;
    int n = 0;
    double worst = 0;
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(doc, "items")) {
        RougeScore s[ROUGE_N_TYPES];
        int best[ROUGE_N_TYPES];
        score_item(item, s, best);
        for (int t = 0; t < ROUGE_N_TYPES; t++) {
            double v[3];
            expected_prf(item, (RougeType)t, v);
            double d =
                fabs(s[t].precision - v[0]) + fabs(s[t].recall - v[1]) + fabs(s[t].fmeasure - v[2]);
            worst = d > worst ? d : worst;
            assert_prf(&s[t], v[0], v[1], v[2]);
            const cJSON *b = cJSON_GetObjectItem(item, "best");
            if (b) assert_int_equal(best[t], cJSON_GetObjectItem(b, rouge_type_name(t))->valueint);
        }
        n++;
    }
    printf("  %d items x 4 types, largest |difference| %.3g\n", n, worst);
    assert_true(n >= 200);
    cJSON_Delete(doc);
}

/* The fixture's items of one group, without stemming, as score rows. */
static int group_rows(const cJSON *doc, const char *group, RougeScore (*rows)[ROUGE_N_TYPES]) {
    int n = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(doc, "items")) {
        if (strcmp(cJSON_GetObjectItem(item, "group")->valuestring, group) != 0) continue;
        for (int t = 0; t < ROUGE_N_TYPES; t++) {
            double v[3];
            expected_prf(item, (RougeType)t, v);
            rows[n][t] = (RougeScore){v[0], v[1], v[2]};
        }
        n++;
    }
    return n;
}

static void assert_row(const RougeScore *row, const cJSON *values) {
    for (int c = 0; c < 3 * ROUGE_N_TYPES; c++) {
        const RougeScore *s = &row[c / 3];
        double v = c % 3 == 0 ? s->precision : c % 3 == 1 ? s->recall : s->fmeasure;
        assert_close(v, cJSON_GetArrayItem(values, c)->valuedouble, TOL);
    }
}

static void test_aggregate_matches_python(void **state) {
    (void)state;
    cJSON *doc = load_fixture();
    const cJSON *agg = cJSON_GetObjectItem(doc, "aggregate");
    RougeScore rows[512][ROUGE_N_TYPES];
    int n = group_rows(doc, cJSON_GetObjectItem(agg, "group")->valuestring, rows);
    assert_int_equal(n, cJSON_GetObjectItem(agg, "n")->valueint);
    RougeScore mean[ROUGE_N_TYPES], low[ROUGE_N_TYPES], mid[ROUGE_N_TYPES], high[ROUGE_N_TYPES];
    rouge_mean((const RougeScore(*)[ROUGE_N_TYPES])rows, n, mean);
    assert_row(mean, cJSON_GetObjectItem(agg, "mean"));
    const cJSON *b = cJSON_GetObjectItem(agg, "bootstrap");
    RougeBootstrapOptions o;
    rouge_bootstrap_options_init(&o);
    o.samples = cJSON_GetObjectItem(b, "samples")->valueint;
    o.confidence = cJSON_GetObjectItem(b, "confidence")->valuedouble;
    o.seed = (uint64_t)cJSON_GetObjectItem(b, "seed")->valuedouble;
    CkError err = {{0}};
    assert_int_equal(
        rouge_bootstrap((const RougeScore(*)[ROUGE_N_TYPES])rows, n, &o, low, mid, high, &err), 0);
    assert_row(low, cJSON_GetObjectItem(b, "low"));
    assert_row(mid, cJSON_GetObjectItem(b, "mid"));
    assert_row(high, cJSON_GetObjectItem(b, "high"));
    for (int t = 0; t < ROUGE_N_TYPES; t++)
        assert_true(low[t].fmeasure <= mid[t].fmeasure && mid[t].fmeasure <= high[t].fmeasure);
    cJSON_Delete(doc);
}

/* ---- the pipeline and the command ----------------------------------------------------------- */

static void write_text(const char *dir, const char *name, const char *text, char *path,
                       size_t cap) {
    snprintf(path, cap, "%s/%s", dir, name);
    assert_int_equal(test_write_file(path, text, strlen(text)), 0);
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Writes the fixture's unstemmed items to dir/data.jsonl with "id": 0, 1, ... and a blank
 * line after every item k with k % 7 == 3 (blank lines count as lines); returns how many. */
static int write_fixture_items(const cJSON *doc, const char *dir, char *path, size_t cap) {
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    int n = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(doc, "items")) {
        if (cJSON_IsTrue(cJSON_GetObjectItem(item, "stem"))) continue;
        cJSON *line = cJSON_CreateObject();
        cJSON_AddNumberToObject(line, "id", n);
        cJSON_AddItemToObject(line, "prediction",
                              cJSON_Duplicate(cJSON_GetObjectItem(item, "prediction"), 1));
        cJSON_AddItemToObject(line, "reference",
                              cJSON_Duplicate(cJSON_GetObjectItem(item, "reference"), 1));
        char *s = cJSON_PrintUnformatted(line);
        fprintf(mem, "%s\n%s", s, n % 7 == 3 ? "\n" : "");
        free(s);
        cJSON_Delete(line);
        n++;
    }
    fclose(mem);
    write_text(dir, "data.jsonl", text, path, cap);
    free(text);
    return n;
}

/* Checks OUT/items.jsonl line by line against the fixture's unstemmed items (ids, source
 * lines, scores, best_reference for lists); returns the sum of their ROUGE-1 F. */
static double check_items_file(const cJSON *doc, const char *out) {
    char path[700];
    size_t len;
    snprintf(path, sizeof path, "%s/items.jsonl", out);
    char *items = test_read_file(path, &len);
    assert_non_null(items);
    int k = 0;
    long expect_line = 1;
    double sum_f1 = 0;
    char *save = NULL;
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(doc, "items")) {
        if (cJSON_IsTrue(cJSON_GetObjectItem(item, "stem"))) continue;
        char *row = strtok_r(k == 0 ? items : NULL, "\n", &save);
        assert_non_null(row);
        cJSON *rec = cJSON_Parse(row);
        assert_non_null(rec);
        assert_int_equal(cJSON_GetObjectItem(rec, "id")->valueint, k);
        assert_int_equal((long)cJSON_GetObjectItem(rec, "line")->valuedouble, expect_line);
        expect_line += k % 7 == 3 ? 2 : 1;
        for (int t = 0; t < ROUGE_N_TYPES; t++) {
            double v[3];
            expected_prf(item, (RougeType)t, v);
            const cJSON *s = cJSON_GetObjectItem(rec, rouge_type_name((RougeType)t));
            assert_close(cJSON_GetObjectItem(s, "precision")->valuedouble, v[0], TOL);
            assert_close(cJSON_GetObjectItem(s, "recall")->valuedouble, v[1], TOL);
            assert_close(cJSON_GetObjectItem(s, "fmeasure")->valuedouble, v[2], TOL);
            if (t == ROUGE_1) sum_f1 += v[2];
        }
        assert_int_equal(cJSON_GetObjectItem(rec, "best_reference") != NULL,
                         cJSON_IsArray(cJSON_GetObjectItem(item, "reference")));
        cJSON_Delete(rec);
        k++;
    }
    assert_null(strtok_r(NULL, "\n", &save));
    free(items);
    return sum_f1;
}

static void test_run_writes_files(void **state) {
    (void)state;
    cJSON *doc = load_fixture();
    char *dir = test_temp_dir();
    char data[600], out[600], path[700];
    int n = write_fixture_items(doc, dir, data, sizeof data);
    snprintf(out, sizeof out, "%s/out/nested", dir);
    RougeRunOptions o;
    rouge_run_options_init(&o);
    o.data = data;
    o.out = out;
    o.bootstrap = 1;
    o.boot.samples = 50;
    RougeSummary sum;
    CkError err = {{0}};
    assert_int_equal(rouge_run(&o, &sum, &err), 0);
    assert_int_equal(sum.n, n);
    double sum_f1 = check_items_file(doc, out);
    /* rouge.json: n, the means, the bootstrap, the settings */
    snprintf(path, sizeof path, "%s/rouge.json", out);
    size_t len;
    char *summary = test_read_file(path, &len);
    cJSON *js = cJSON_Parse(summary);
    free(summary);
    assert_non_null(js);
    assert_int_equal(cJSON_GetObjectItem(js, "n")->valueint, n);
    const cJSON *r1 = cJSON_GetObjectItem(cJSON_GetObjectItem(js, "scores"), "rouge1");
    assert_close(cJSON_GetObjectItem(r1, "fmeasure")->valuedouble, sum_f1 / n, TOL);
    assert_close(sum.mean[ROUGE_1].fmeasure, sum_f1 / n, TOL);
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(js, "bootstrap"), "rougeLsum"));
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(js, "settings"), "stemmer")->valuestring, "none");
    cJSON_Delete(js);
    cJSON_Delete(doc);
    assert_int_equal(test_remove_dir(dir), 0);
    free(dir);
}

static void test_run_two_files(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    char data[600], refs[600], out[600], path[700];
    write_text(dir, "pred.jsonl",
               "{\"id\":\"a\",\"output\":\"The runners ran\"}\n\n{\"output\":\"x\"}\n", data,
               sizeof data);
    write_text(dir, "ref.jsonl",
               "{\"id\":\"a\",\"summary\":\"a runner runs\"}\n{\"summary\":[\"y\",\"x\"]}\n", refs,
               sizeof refs);
    snprintf(out, sizeof out, "%s/out", dir);
    RougeRunOptions o;
    rouge_run_options_init(&o);
    o.data = data;
    o.references = refs;
    o.out = out;
    o.prediction_field = "output";
    o.reference_field = "summary";
    o.stem = 1;
    RougeSummary sum;
    CkError err = {{0}};
    assert_int_equal(rouge_run(&o, &sum, &err), 0);
    assert_int_equal(sum.n, 2);
    /* item 1: the runner ran / a runner run: 1 of 3 each; item 2: x against [y, x]: 1 */
    assert_close(sum.mean[ROUGE_1].precision, (1.0 / 3 + 1) / 2, TOL);
    snprintf(path, sizeof path, "%s/items.jsonl", out);
    size_t len;
    char *items = test_read_file(path, &len);
    assert_non_null(strstr(items, "\"line\":3,\"reference_line\":2,"));
    assert_non_null(strstr(items, "\"best_reference\":{\"rouge1\":1,"));
    free(items);
    /* the ids say the pairing is wrong */
    write_text(dir, "ref2.jsonl", "{\"id\":\"b\",\"summary\":\"a\"}\n{\"summary\":\"b\"}\n", refs,
               sizeof refs);
    snprintf(out, sizeof out, "%s/out2", dir);
    assert_int_equal(rouge_run(&o, &sum, &err), -1);
    assert_non_null(strstr(err.msg, "pred.jsonl: line 1: field 'id' differs from"));
    assert_false(exists(out));
    assert_int_equal(test_remove_dir(dir), 0);
    free(dir);
}

static void test_run_bad_input(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    struct {
        const char *text, *message;
    } cases[] = {
        {"{\"prediction\":\"a\",\"reference\":\"a\"}\n[1,2]\n",
         "data.jsonl: line 2: not a JSON object"},
        {"{\"prediction\":\"a\",\"reference\":\"a\"}\n\n{\"prediction\":\"a\"}\n",
         "data.jsonl: line 3: field 'reference': missing"},
        {"{\"prediction\":3,\"reference\":\"a\"}\n",
         "data.jsonl: line 1: field 'prediction': expected a string"},
        {"{\"prediction\":\"a\",\"reference\":[]}\n",
         "line 1: field 'reference': expected a string or a non-empty array of strings"},
        {"{\"prediction\":\"a\",\"reference\":[\"a\",null]}\n",
         "line 1: field 'reference': element 1 is not a string"},
        {"{\"prediction\":\"a\",\"reference\":\"a\"}\n{\"prediction\":\"a\"",
         "line 2: not a JSON object"},
        {"\n\n", "data.jsonl: no records"},
    };
    char data[600], out[600];
    snprintf(out, sizeof out, "%s/out", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text(dir, "data.jsonl", cases[i].text, data, sizeof data);
        RougeRunOptions o;
        rouge_run_options_init(&o);
        o.data = data;
        o.out = out;
        CkError err = {{0}};
        assert_int_equal(rouge_run(&o, NULL, &err), -1);
        if (!strstr(err.msg, cases[i].message)) printf("  case %zu: %s\n", i, err.msg);
        assert_non_null(strstr(err.msg, cases[i].message));
        assert_false(exists(out)); /* nothing written, not even the directory */
    }
    /* two files of different lengths */
    char refs[600];
    write_text(dir, "data.jsonl", "{\"prediction\":\"a\"}\n{\"prediction\":\"b\"}\n", data,
               sizeof data);
    write_text(dir, "refs.jsonl", "{\"reference\":\"a\"}\n", refs, sizeof refs);
    RougeRunOptions o;
    rouge_run_options_init(&o);
    o.data = data;
    o.references = refs;
    o.out = out;
    CkError err = {{0}};
    assert_int_equal(rouge_run(&o, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "data.jsonl has more records than"));
    assert_false(exists(out));
    assert_int_equal(test_remove_dir(dir), 0);
    free(dir);
}

static void test_command(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    char data[600], cmd[2000];
    write_text(dir, "data.jsonl",
               "{\"prediction\":\"the cat the dog\",\"reference\":\"The cat sat on the mat.\"}\n",
               data, sizeof data);
    char *out = NULL, *errout = NULL;
    snprintf(cmd, sizeof cmd, "%s eval rouge %s --out %s/o --stemmer porter --bootstrap 20",
             CUTKIT_BINARY, data, dir);
    assert_int_equal(test_run(cmd, &out, &errout), 0);
    printf("%s", out);
    assert_non_null(strstr(out, "rouge1         75.00     50.00     60.00"));
    free(out);
    free(errout);
    const char *usage[] = {"",
                           "--out x",
                           "a b c --out x",
                           "DATA --out x --stemmer snowball",
                           "DATA --out x --confidence 2",
                           "DATA"};
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s eval rouge %s", CUTKIT_BINARY, usage[i]);
        errout = NULL;
        assert_int_equal(test_run(cmd, NULL, &errout), 2);
        assert_non_null(strstr(errout, "cutkit eval rouge: "));
        free(errout);
    }
    write_text(dir, "bad.jsonl", "{\"prediction\":\"a\"}\n", data, sizeof data);
    snprintf(cmd, sizeof cmd, "%s eval rouge %s --out %s/bad", CUTKIT_BINARY, data, dir);
    errout = NULL;
    assert_int_equal(test_run(cmd, NULL, &errout), 1);
    assert_non_null(strstr(errout, "bad.jsonl: line 1: field 'reference': missing"));
    free(errout);
    assert_int_equal(test_remove_dir(dir), 0);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_porter_hand),
        cmocka_unit_test(test_tokenize_hand),
        cmocka_unit_test(test_rouge_n_hand),
        cmocka_unit_test(test_rouge_l_hand),
        cmocka_unit_test(test_rouge_lsum_hand),
        cmocka_unit_test(test_stemming_and_empty),
        cmocka_unit_test(test_multi_reference),
        cmocka_unit_test(test_porter_matches_nltk),
        cmocka_unit_test(test_tokenize_matches_python),
        cmocka_unit_test(test_scores_match_python),
        cmocka_unit_test(test_aggregate_matches_python),
        cmocka_unit_test(test_run_writes_files),
        cmocka_unit_test(test_run_two_files),
        cmocka_unit_test(test_run_bad_input),
        cmocka_unit_test(test_command),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
