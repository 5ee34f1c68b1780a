/* test_contrast.c — `cutkit contrast` through its library entry point
 * (analysis/contrast_pipeline.h) on the embedded stories260K: contrast.csv read back with
 * libcsv (token texts with commas, quotes and newlines; the report's reader too), its log pA /
 * log pM against `cutkit score` of the two sequences, its flags against log ratio > log λ,
 * detection.json against detection computed here with the library on the same synthetic
 * world, the terminal view's markers, figures with and without gnuplot, and bad input; then
 * the command itself: the same bytes as the library, its messages and exit codes. */
#include <cjson/cJSON.h>
#include <csv.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/test_util.h"

#include "analysis/contrast.h"
#include "reports/contrast_csv.h"
#include "analysis/contrast_pipeline.h"
#include "train/cut.h"
#include "analysis/detection.h"
#include "datasets/judgments.h"
#include "formats/lm.h"
#include "datasets/synth.h"
#include "datasets/templates.h"
#include "util/threads.h"

static char *dir;
static char fixture[1024]; /* a JSONL judgment file with awkward texts */

/* Outputs chosen so that tokens hold commas, quotes, newlines and a non-ASCII byte. */
static const char *OUT0 = " Tom said, \"hi, Sue\".\nThen they ran, fast.";
static const char *OUT2 = " \"A,B\"\n\n\"\" is, she said, \xc3\xa9t\xc3\xa9.";
static const char *INSTR0 = "Write a story about Tom.";
static const char *JUDG0 = "Tom should say \"hello\", not \"hi\".";

static void add_record(FILE *f, const char *instruction, const char *output, const char *judgment) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "instruction", instruction);
    cJSON_AddStringToObject(o, "output", output);
    if (judgment)
        cJSON_AddStringToObject(o, "judgment", judgment);
    else
        cJSON_AddNullToObject(o, "judgment");
    char *s = cJSON_PrintUnformatted(o);
    fprintf(f, "%s\n", s);
    free(s);
    cJSON_Delete(o);
}

static int setup(void **state) {
    (void)state;
    threads_set(1); /* the library runs as the command with --threads 1 */
    dir = test_temp_dir();
    if (!dir) return -1;
    snprintf(fixture, sizeof fixture, "%s/judgments.jsonl", dir);
    FILE *f = fopen(fixture, "w");
    if (!f) return -1;
    add_record(f, INSTR0, OUT0, JUDG0);
    add_record(f, "Write a story.", " A positive, \"kept\" out.", NULL);
    add_record(f, "Write a line, with commas.", OUT2, "It is wrong, \"really\".\nFix it.");
    add_record(f, "Write a story.", " One more time, then.", "Say it twice.");
    fclose(f);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    int rc = test_remove_dir(dir);
    free(dir);
    return rc;
}

/* Runs cutkit with args (a shell fragment); returns the exit status. */
static int run_cutkit(const char *env, const char *args, char **out, char **err) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s '%s' %s", env ? env : "", CUTKIT_BINARY, args);
    return test_run(cmd, out, err);
}

/* ---- a plain libcsv reader: every record's fields ---- */

typedef struct {
    char **fields; /* [n_rows * n_cols] */
    int n_rows, n_cols, cap, field, bad;
} Table;

static void on_field(void *data, size_t len, void *ctx) {
    Table *t = ctx;
    if (t->n_rows == 0 && t->field >= t->n_cols) t->n_cols = t->field + 1;
    if (t->field >= t->n_cols) {
        t->bad = 1;
        return;
    }
    const size_t need = (size_t)(t->n_rows + 1) * (size_t)t->n_cols;
    if (need > (size_t)t->cap) {
        t->cap = t->cap ? t->cap * 2 : 4096;
        while ((size_t)t->cap < need) t->cap *= 2;
        t->fields = realloc(t->fields, sizeof(char *) * (size_t)t->cap);
    }
    char *s = malloc(len + 1);
    memcpy(s, data ? data : "", len);
    s[len] = '\0';
    t->fields[(size_t)t->n_rows * (size_t)t->n_cols + (size_t)t->field++] = s;
}

static void on_row(int c, void *ctx) {
    (void)c;
    Table *t = ctx;
    if (t->field != t->n_cols) t->bad = 1;
    t->n_rows++;
    t->field = 0;
}

static int no_space(unsigned char c) {
    (void)c;
    return 0;
}

/* Reads the CSV at path (after its '#' comment line) into t; returns the comment line. */
static char *read_table(const char *path, Table *t) {
    memset(t, 0, sizeof *t);
    size_t size;
    char *text = test_read_file(path, &size);
    assert_non_null(text);
    assert_true(text[0] == '#');
    char *nl = strchr(text, '\n');
    assert_non_null(nl);
    struct csv_parser p;
    assert_int_equal(csv_init(&p, CSV_STRICT | CSV_STRICT_FINI), 0);
    csv_set_space_func(&p, no_space);
    const size_t body = size - (size_t)(nl + 1 - text);
    assert_int_equal(csv_parse(&p, nl + 1, body, on_field, on_row, t), body);
    assert_int_equal(csv_fini(&p, on_field, on_row, t), 0);
    csv_free(&p);
    assert_false(t->bad);
    *nl = '\0';
    return text;
}

static const char *cell(const Table *t, int row, int col) {
    return t->fields[(size_t)row * (size_t)t->n_cols + (size_t)col];
}

static void table_free(Table *t) {
    for (int i = 0; i < t->n_rows * t->n_cols; i++) free(t->fields[i]);
    free(t->fields);
}

/* ---------------------------------------------------------------------------------------- */

/* Options for the fixture into dir/name: no figures, no view. */
static ContrastPipelineOptions options(const char *judgments, const char *name, char *out,
                                       size_t size) {
    snprintf(out, size, "%s/%s", dir, name);
    ContrastPipelineOptions o = contrast_pipeline_defaults();
    o.judgments = judgments;
    o.out = out;
    o.plots = "none";
    return o;
}

/* Runs o and fails the test unless it succeeds; r is released by the caller. */
static void run_ok(const ContrastPipelineOptions *o, ContrastPipelineResult *r) {
    CkError err = {{0}};
    int rc = contrast_pipeline_run(o, r, &err);
    if (rc != 0) fprintf(stderr, "contrast: %s\n", err.msg);
    assert_int_equal(rc, 0);
}

/* Runs o and fails the test unless it fails with a message holding want; returns the result
 * (released here) flag bad_example. */
static int run_fails(const ContrastPipelineOptions *o, const char *want) {
    ContrastPipelineResult r;
    CkError err = {{0}};
    assert_int_equal(contrast_pipeline_run(o, &r, &err), -1);
    if (!strstr(err.msg, want)) fprintf(stderr, "got '%s', want '%s'\n", err.msg, want);
    assert_non_null(strstr(err.msg, want));
    const int bad_example = r.bad_example;
    contrast_pipeline_result_free(&r);
    return bad_example;
}

/* ---------------------------------------------------------------------------------------- */

/* Token texts round-trip through libcsv: each example's texts spell its response exactly,
 * commas, quotes and newlines included; the report's reader agrees; flags and ratios agree
 * with the numbers; positives are skipped; the view marks flagged tokens without colour. */
static void test_csv_round_trip_and_show(void **state) {
    (void)state;
    char out[1200], path[1300];
    ContrastPipelineOptions o = options(fixture, "rt", out, sizeof out);
    o.lambdas = "1.000001,1.1,2";
    o.show_max = 2;
    char *shown = NULL;
    size_t shown_len = 0;
    o.show = open_memstream(&shown, &shown_len);
    assert_non_null(o.show);
    ContrastPipelineResult res;
    run_ok(&o, &res);
    fclose(o.show);
    assert_int_equal(res.run.n_examples, 3);
    assert_int_equal(res.run.n_positive, 1);
    assert_true(res.csv_written && !res.detection_written && !res.figures_started);
    contrast_pipeline_result_free(&res);
    /* the view: plain markers with the ratio, no colour codes, the first two examples only */
    assert_non_null(strstr(shown, "--- example 0: "));
    assert_non_null(strstr(shown, "--- example 2: "));
    assert_null(strstr(shown, "--- example 3"));
    assert_non_null(strstr(shown, "[["));
    assert_non_null(strstr(shown, "]]{+"));
    assert_null(strchr(shown, '\033'));
    free(shown);

    snprintf(path, sizeof path, "%s/contrast.csv", out);
    Table t;
    char *comment = read_table(path, &t);
    assert_non_null(strstr(comment, "# cutkit contrast: model embedded:stories260K"));
    assert_non_null(strstr(comment, "1 positives skipped"));
    free(comment);
    const char *header[] = {"example", "position",  "token_id",         "token_text",  "log_pa",
                            "log_pm",  "log_ratio", "flagged@1.000001", "flagged@1.1", "flagged@2"};
    assert_int_equal(t.n_cols, 10);
    for (int c = 0; c < 10; c++) assert_string_equal(cell(&t, 0, c), header[c]);
    const double lambdas[3] = {1.000001, 1.1, 2};
    const char *outputs[4] = {OUT0, NULL, OUT2, " One more time, then."};
    char spelled[4][256] = {{0}};
    int next_position[4] = {0, 0, 0, 0}, n_flag[3] = {0, 0, 0}, eos_rows = 0;
    int has_comma = 0, has_quote = 0, has_newline = 0;
    for (int r = 1; r < t.n_rows; r++) {
        const int ex = atoi(cell(&t, r, 0));
        assert_true(ex == 0 || ex == 2 || ex == 3); /* record 1 is positive: skipped */
        assert_int_equal(atoi(cell(&t, r, 1)), next_position[ex]++);
        const char *text = cell(&t, r, 3);
        strcat(spelled[ex], text);
        has_comma |= strchr(text, ',') != NULL;
        has_quote |= strchr(text, '"') != NULL;
        has_newline |= strchr(text, '\n') != NULL;
        eos_rows += atoi(cell(&t, r, 2)) == 2 && text[0] == '\0';
        const double la = strtod(cell(&t, r, 4), NULL), lm = strtod(cell(&t, r, 5), NULL);
        const double ratio = strtod(cell(&t, r, 6), NULL);
        assert_true(la <= 0 && lm <= 0);
        assert_close(ratio, la - lm, 1e-8 * fmax(1.0, fabs(la)));
        for (int l = 0; l < 3; l++) {
            const int flag = atoi(cell(&t, r, 7 + l));
            assert_int_equal(flag, ratio > log(lambdas[l]));
            n_flag[l] += flag;
        }
    }
    for (int ex = 0; ex < 4; ex++)
        if (outputs[ex]) assert_string_equal(spelled[ex], outputs[ex]);
    assert_true(has_comma && has_quote && has_newline);
    assert_int_equal(eos_rows, 3);
    /* a larger λ flags a subset, and the smallest flags something */
    assert_true(n_flag[0] > 0 && n_flag[0] >= n_flag[1] && n_flag[1] >= n_flag[2]);
    printf("  %d token rows; flagged at 1.000001 / 1.1 / 2: %d / %d / %d\n", t.n_rows - 1,
           n_flag[0], n_flag[1], n_flag[2]);
    table_free(&t);

    /* the report's reader sees the same texts, and picks the flag column asked for */
    ContrastCsv cs;
    CkError err = {{0}};
    assert_int_equal(contrast_csv_read(&cs, path, 10, 1.1, &err), 0);
    assert_int_equal(cs.n, 3);
    assert_close(cs.flag_lambda, 1.1, 1e-12);
    for (int i = 0; i < cs.n; i++) {
        char buf[256] = {0};
        for (int k = 0; k < cs.examples[i].n; k++) strcat(buf, cs.examples[i].tokens[k].text);
        assert_string_equal(buf, outputs[cs.examples[i].example]);
    }
    contrast_csv_free(&cs);

    /* the limit counts negatives */
    o = options(fixture, "rt", out, sizeof out);
    o.limit = 1;
    run_ok(&o, &res);
    assert_int_equal(res.run.n_examples, 1);
    contrast_pipeline_result_free(&res);
    comment = read_table(path, &t);
    for (int r = 1; r < t.n_rows; r++) assert_string_equal(cell(&t, r, 0), "0");
    free(comment);
    table_free(&t);
}

/* Parses one `cutkit score` JSON line into its tokens and logprobs. */
static void parse_score(const char *line, int **tokens, int *n, double **lp) {
    cJSON *o = cJSON_Parse(line);
    assert_non_null(o);
    const cJSON *toks = cJSON_GetObjectItem(o, "tokens"), *lps = cJSON_GetObjectItem(o, "logprobs");
    *n = cJSON_GetArraySize(toks);
    assert_int_equal(cJSON_GetArraySize(lps), *n - 1);
    *tokens = malloc(sizeof(int) * (size_t)*n);
    *lp = malloc(sizeof(double) * (size_t)*n);
    for (int i = 0; i < *n; i++) (*tokens)[i] = cJSON_GetArrayItem(toks, i)->valueint;
    for (int i = 0; i + 1 < *n; i++) (*lp)[i] = cJSON_GetArrayItem(lps, i)->valuedouble;
    cJSON_Delete(o);
}

/* contrast.csv's log pA and log pM of record 0 equal `cutkit score` of the Align-N text
 * (judge prompt + response) and the Misalign text (plain prompt + response), token by token
 * (score has no EOS: every response token but the last). */
static void test_csv_matches_score(void **state) {
    (void)state;
    char out[1200], args[4096], path[1300];
    ContrastPipelineOptions o = options(fixture, "score", out, sizeof out);
    o.limit = 1;
    ContrastPipelineResult res;
    run_ok(&o, &res);
    contrast_pipeline_result_free(&res);
    snprintf(path, sizeof path, "%s/contrast.csv", out);
    Table t;
    free(read_table(path, &t));
    const int n_resp = t.n_rows - 1;
    assert_true(n_resp > 5);

    Template tpl;
    CkError err = {{0}};
    assert_int_equal(template_default(&tpl, &err), 0);
    char *pa = template_format(tpl.prompt_no_input_judge, INSTR0, JUDG0, &err);
    char *pm = template_format(tpl.prompt_no_input, INSTR0, NULL, &err);
    assert_non_null(pa);
    assert_non_null(pm);
    char texts[2][2048];
    snprintf(texts[0], sizeof texts[0], "%s%s", pa, OUT0);
    snprintf(texts[1], sizeof texts[1], "%s%s", pm, OUT0);
    free(pa);
    free(pm);
    template_free(&tpl);
    char in_path[1300];
    snprintf(in_path, sizeof in_path, "%s/score_in.jsonl", dir);
    FILE *f = fopen(in_path, "w");
    for (int s = 0; s < 2; s++) {
        cJSON *obj = cJSON_CreateObject();
        cJSON_AddStringToObject(obj, "text", texts[s]);
        char *line = cJSON_PrintUnformatted(obj);
        fprintf(f, "%s\n", line);
        free(line);
        cJSON_Delete(obj);
    }
    fclose(f);
    /* an independent path to the same numbers: another command's scoring */
    snprintf(args, sizeof args, "score --threads 1 < '%s'", in_path);
    char *so = NULL;
    assert_int_equal(run_cutkit(NULL, args, &so, NULL), 0);
    char *second = strchr(so, '\n');
    assert_non_null(second);
    *second++ = '\0';
    double worst = 0;
    const char *lines[2] = {so, second};
    for (int s = 0; s < 2; s++) {
        int *toks, n;
        double *lp;
        parse_score(lines[s], &toks, &n, &lp);
        const int m = n_resp - 1; /* response tokens without EOS */
        for (int k = 0; k < m; k++) {
            const int i = n - m + k; /* the token's index in the scored sequence */
            assert_int_equal(atoi(cell(&t, 1 + k, 2)), toks[i]);
            const double want = lp[i - 1], got = strtod(cell(&t, 1 + k, 4 + s), NULL);
            worst = fmax(worst, fabs(got - want) / fmax(1.0, fabs(want)));
        }
        free(toks);
        free(lp);
    }
    printf("  contrast.csv vs cutkit score: worst relative difference %.3g over %d tokens\n", worst,
           n_resp - 1);
    assert_close(worst, 0, 1e-5);
    free(so);
    table_free(&t);
}

/* ---- detection.json against the library on the same synthetic world ---- */

/* Detection of the negatives of w's test split, computed here from the records in memory
 * (spans and correct responses as generated, not as read back from JSON). */
static void measure_direct(const SynthWorld *w, const double *lambdas, int n_l,
                           DetectionCounts *counts, long *n_tokens) {
    LanguageModel lm;
    CkError err = {{0}};
    threads_set(1); /* as the command ran: the same kernels, the same roundings */
    assert_int_equal(lm_open(&lm, NULL, NULL, &err), 0);
    Template tpl = {strdup(SYNTH_PROMPT_NO_INPUT), strdup(SYNTH_PROMPT_NO_INPUT_JUDGE),
                    strdup(SYNTH_RESPONSE_SPLIT)};
    detection_counts_init(counts, lambdas, n_l);
    *n_tokens = 0;
    for (int i = 0; i < w->n[SYNTH_SPLIT_TEST]; i++) {
        const SynthRecord *r = &w->records[SYNTH_SPLIT_TEST][i];
        if (!r->judgment) continue;
        JudgmentRecord jr = {r->instruction, NULL, r->output, r->judgment, 0, 0, i};
        JudgmentRecord jc = {r->instruction, NULL, r->correct_output, NULL, 0, 0, i};
        CutExample ex, cex;
        assert_int_equal(judgments_build_example(&tpl, &jr, &lm.tokenizer, 0, &ex, &err), 0);
        assert_int_equal(judgments_build_example(&tpl, &jc, &lm.tokenizer, 0, &cex, &err), 0);
        TokenContrast c;
        assert_int_equal(
            token_contrast_compute(&lm.model, NULL, &lm.tokenizer, &ex, r->output, &c, &err), 0);
        const int n = c.n, nc = cex.n_response;
        double la[512], lm_[512];
        int ids[512], cids[512], cs[1024], decisive[16];
        DetectionSpan toks[512], ctoks[512], errs[16];
        assert_true(n <= 512 && nc <= 512 && r->n_spans <= 16);
        for (int k = 0; k < n; k++) {
            la[k] = c.tokens[k].log_pa;
            lm_[k] = c.tokens[k].log_pm;
            ids[k] = c.tokens[k].token;
            toks[k] = (DetectionSpan){c.tokens[k].start, c.tokens[k].end};
        }
        assert_int_equal(
            token_contrast_spans(&lm.tokenizer, &cex.a, r->correct_output, cs, cs + nc), 1);
        for (int k = 0; k < nc; k++) {
            cids[k] = cex.a.tokens[cex.a.n - nc + k];
            ctoks[k] = (DetectionSpan){cs[k], cs[nc + k]};
        }
        for (int j = 0; j < r->n_spans; j++)
            errs[j] = (DetectionSpan){r->spans[j].start, r->spans[j].end};
        detection_decisive_tokens(r->output, ids, toks, n, r->correct_output, cids, ctoks, nc, errs,
                                  r->n_spans, decisive);
        DetectionExample de = {n, la, lm_, toks, r->n_spans, errs, decisive, r->output};
        assert_int_equal(detection_accumulate(&de, counts, n_l, &err), 0);
        *n_tokens += n;
        token_contrast_free(&c);
        judgments_example_free(&ex);
        judgments_example_free(&cex);
    }
    template_free(&tpl);
    lm_close(&lm);
}

static double json_at(const cJSON *root, const char *obj, const char *key, int i) {
    const cJSON *o = obj ? cJSON_GetObjectItem(root, obj) : root;
    const cJSON *a = cJSON_GetObjectItem(o, key);
    assert_true(cJSON_IsArray(a));
    const cJSON *v = cJSON_GetArrayItem(a, i);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static void test_detection_json_matches_library(void **state) {
    (void)state;
    SynthOptions so = synth_default_options();
    so.seed = 5;
    so.n_train = 0;
    so.n_warmup = 0;
    so.n_test = 16;
    SynthWorld w;
    CkError err = {{0}};
    char world[1200], judgments[1300], tpl[1300], out[1200], path[1300];
    snprintf(world, sizeof world, "%s/world", dir);
    assert_int_equal(synth_make(&w, &so, world, &err), 0);
    snprintf(judgments, sizeof judgments, "%s/test.jsonl", world);
    snprintf(tpl, sizeof tpl, "%s/template.json", world);
    ContrastPipelineOptions o = options(judgments, "det", out, sizeof out);
    o.template_path = tpl;
    o.lambdas = "1.1,2";
    ContrastPipelineResult res;
    run_ok(&o, &res);
    assert_true(res.detection_written);
    assert_int_equal(res.n_lambdas, 2);
    contrast_pipeline_result_free(&res);

    const double lambdas[2] = {1.1, 2.0};
    DetectionCounts want[2];
    long n_tokens;
    measure_direct(&w, lambdas, 2, want, &n_tokens);
    snprintf(path, sizeof path, "%s/detection.json", out);
    char *text = test_read_file(path, NULL);
    assert_non_null(text);
    cJSON *root = cJSON_Parse(text);
    free(text);
    assert_non_null(root);
    for (int l = 0; l < 2; l++) {
        const DetectionCounts *c = &want[l];
        const DetectionScores s = detection_scores(c);
        assert_close(json_at(root, NULL, "lambdas", l), lambdas[l], 1e-12);
        assert_int_equal((long)json_at(root, "counts", "examples", l), c->n_examples);
        assert_int_equal((long)json_at(root, "counts", "tokens", l), c->n_tokens);
        assert_int_equal((long)json_at(root, "counts", "error_tokens", l), c->n_error_tokens);
        assert_int_equal((long)json_at(root, "counts", "flagged", l), c->n_flagged);
        assert_int_equal((long)json_at(root, "counts", "flagged_errors", l), c->n_flagged_errors);
        assert_int_equal((long)json_at(root, "counts", "mentions", l), c->n_mentions);
        assert_int_equal((long)json_at(root, "counts", "mentions_found", l), c->n_mentions_found);
        assert_int_equal((long)json_at(root, "counts", "decisive", l), c->n_decisive);
        assert_int_equal((long)json_at(root, "counts", "decisive_found", l), c->n_decisive_found);
        assert_int_equal((long)json_at(root, "counts", "first_mentions", l), c->n_first);
        assert_int_equal((long)json_at(root, "counts", "first_mentions_found", l),
                         c->n_first_found);
        assert_close(json_at(root, "token", "precision", l), s.precision, 1e-12);
        assert_close(json_at(root, "token", "recall", l), s.recall, 1e-12);
        assert_close(json_at(root, "token", "f1", l), s.f1, 1e-12);
        assert_close(json_at(root, "token", "chance_precision", l), s.chance_precision, 1e-12);
        assert_close(json_at(root, NULL, "mention_recall", l), s.mention_recall, 1e-12);
        assert_close(json_at(root, NULL, "first_mention_recall", l), s.first_mention_recall, 1e-12);
        assert_close(json_at(root, NULL, "decisive_recall", l), s.decisive_recall, 1e-12);
        assert_close(json_at(root, NULL, "flagged_fraction", l), s.flagged_fraction, 1e-12);
        printf("  lambda %g: %ld examples, %ld tokens, %ld flagged, P %.3f R %.3f F1 %.3f, "
               "mention R %.3f, decisive R %.3f\n",
               lambdas[l], c->n_examples, c->n_tokens, c->n_flagged, s.precision, s.recall, s.f1,
               s.mention_recall, s.decisive_recall);
    }
    assert_true(want[0].n_examples > 3 && want[0].n_mentions > 0 && want[0].n_decisive > 0);
    assert_int_equal(want[0].n_tokens, n_tokens);
    /* the curve holds the requested λs and a dense grid from 1.01 to 1000, ascending */
    const cJSON *curve = cJSON_GetObjectItem(root, "curve");
    const cJSON *cl = cJSON_GetObjectItem(curve, "lambdas");
    const int n_curve = cJSON_GetArraySize(cl);
    assert_true(n_curve >= 40);
    assert_close(cJSON_GetArrayItem(cl, 0)->valuedouble, 1.01, 1e-12);
    assert_close(cJSON_GetArrayItem(cl, n_curve - 1)->valuedouble, 1000, 1e-9);
    int found = 0;
    for (int i = 0; i < n_curve; i++) {
        const double l = cJSON_GetArrayItem(cl, i)->valuedouble;
        if (i > 0) assert_true(l > cJSON_GetArrayItem(cl, i - 1)->valuedouble);
        if (l == 2.0) {
            found = 1;
            assert_close(json_at(curve, "token", "f1", i), detection_scores(&want[1]).f1, 1e-12);
        }
    }
    assert_true(found);
    cJSON_Delete(root);
    synth_world_free(&w);
}

/* contrast_lambda_grid: requested values merged into the log grid, sorted, no duplicates. */
static void test_lambda_grid(void **state) {
    (void)state;
    const double req[4] = {2.0, 1.1, 2.0, 1000.0};
    double grid[64];
    const int n = contrast_lambda_grid(req, 4, 40, grid, 64);
    assert_int_equal(n, 42); /* 40 + 1.1 + 2 (2.0 twice, 1000 on the grid) */
    assert_close(grid[0], 1.01, 1e-12);
    assert_close(grid[n - 1], 1000.0, 1e-9);
    int has11 = 0, has2 = 0;
    for (int i = 0; i < n; i++) {
        if (i) assert_true(grid[i] > grid[i - 1]);
        has11 |= grid[i] == 1.1;
        has2 |= grid[i] == 2.0;
    }
    assert_true(has11 && has2);
}

/* contrast_parse_lambdas: positive finite numbers separated by commas, at most max. */
static void test_parse_lambdas(void **state) {
    (void)state;
    double l[4];
    assert_int_equal(contrast_parse_lambdas("1.1,1.2,2", l, 4), 3);
    assert_close(l[0], 1.1, 0);
    assert_close(l[2], 2.0, 0);
    assert_int_equal(contrast_parse_lambdas("", l, 4), 0);
    assert_int_equal(contrast_parse_lambdas("1.1,x", l, 4), -1);
    assert_int_equal(contrast_parse_lambdas("1.1,,2", l, 4), -1);
    assert_int_equal(contrast_parse_lambdas("0", l, 4), -1);
    assert_int_equal(contrast_parse_lambdas("-1", l, 4), -1);
    assert_int_equal(contrast_parse_lambdas("inf", l, 4), -1);
    assert_int_equal(contrast_parse_lambdas("1,2,3,4,5", l, 4), -1);
}

/* Figures: without gnuplot (PATH of an empty folder) the data and scripts are written and the
 * note names the package; with it, SVG images. */
static void test_figures(void **state) {
    (void)state;
    char out[1200], path[1300], empty[1200];
    snprintf(empty, sizeof empty, "%s/empty-path", dir);
    assert_int_equal(mkdir(empty, 0777), 0);
    ContrastPipelineOptions o = options(fixture, "nognuplot", out, sizeof out);
    o.plots = "png";
    o.example = 2;
    const char *old = getenv("PATH");
    char *saved = old ? strdup(old) : NULL;
    setenv("PATH", empty, 1);
    ContrastPipelineResult res;
    CkError err = {{0}};
    int rc = contrast_pipeline_run(&o, &res, &err);
    if (saved) setenv("PATH", saved, 1);
    free(saved);
    if (rc != 0) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    assert_true(res.figures_started && !res.figures.gnuplot_ran && !res.strip_missing);
    assert_non_null(strstr(res.figures.note, "apt-get install gnuplot-nox"));
    contrast_pipeline_result_free(&res);
    const char *written[] = {"heatmap.dat", "heatmap.gp", "strip.dat",
                             "strip.gp",    "lambda.dat", "lambda.gp"};
    struct stat st;
    for (int i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "%s/figures/%s", out, written[i]);
        assert_int_equal(stat(path, &st), 0);
    }
    snprintf(path, sizeof path, "%s/figures/heatmap.png", out);
    assert_int_not_equal(stat(path, &st), 0);
    /* the strip is of record 2: its texts are OUT2's tokens, the newline as ^J */
    snprintf(path, sizeof path, "%s/figures/strip.dat", out);
    char *strip = test_read_file(path, NULL);
    assert_non_null(strip);
    assert_non_null(strstr(strip, "^J"));
    free(strip);

    FigureTarget probe;
    memset(&probe, 0, sizeof probe);
    probe.dir = dir;
    if (!figures_have_gnuplot(&probe)) {
        test_missing_reference("gnuplot is not installed: the image half of test_figures");
        skip();
    }
    o = options(fixture, "svg", out, sizeof out);
    o.plots = "svg";
    run_ok(&o, &res);
    assert_true(res.figures.gnuplot_ran);
    contrast_pipeline_result_free(&res);
    const char *images[] = {"heatmap.svg", "strip.svg", "lambda.svg"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/figures/%s", out, images[i]);
        char *svg = test_read_file(path, NULL);
        assert_non_null(svg);
        assert_non_null(strstr(svg, "<svg"));
        assert_non_null(strstr(svg, "</svg>"));
        free(svg);
    }
    /* no error spans in this file: no PR figure */
    snprintf(path, sizeof path, "%s/figures/pr.gp", out);
    assert_int_not_equal(stat(path, &st), 0);

    /* a folder whose name gnuplot's quoted cd cannot take: drawn all the same, with the
     * working directory as it was; the command exits 0 */
    char before[4096], after[4096];
    assert_non_null(getcwd(before, sizeof before));
    o = options(fixture, "it's", out, sizeof out);
    o.plots = "svg";
    run_ok(&o, &res);
    assert_true(res.figures.gnuplot_ran);
    assert_string_equal(res.figures.dir, res.figures_dir);
    contrast_pipeline_result_free(&res);
    assert_non_null(getcwd(after, sizeof after));
    assert_string_equal(before, after);
    snprintf(path, sizeof path, "%s/figures/heatmap.svg", out);
    assert_int_equal(stat(path, &st), 0);
    char args[4096], *se = NULL;
    snprintf(args, sizeof args,
             "contrast --judgments '%s' --out \"%s/it's cmd\" --plots svg --threads 1", fixture,
             dir);
    const int rc_cmd = run_cutkit(NULL, args, NULL, &se);
    if (rc_cmd != 0) fprintf(stderr, "%s", se);
    assert_int_equal(rc_cmd, 0);
    free(se);
    snprintf(path, sizeof path, "%s/it's cmd/figures/heatmap.svg", dir);
    assert_int_equal(stat(path, &st), 0);
}

/* Missing files, malformed records and bad values: one message naming the place, and no
 * contrast.csv left behind. */
static void test_bad_input(void **state) {
    (void)state;
    char out[1200], bad[1300], nope[1300], want[1400];
    snprintf(nope, sizeof nope, "%s/nope.jsonl", dir);
    ContrastPipelineOptions o = options(nope, "bad", out, sizeof out);
    run_fails(&o, "nope.jsonl: cannot open");

    /* line 3 is not JSON (line 2 is blank: the count still names the line in the file) */
    snprintf(bad, sizeof bad, "%s/bad.jsonl", dir);
    o.judgments = bad;
    const char *lines = "{\"instruction\": \"a\", \"output\": \" b\", \"judgment\": \"c\"}\n"
                        "\n"
                        "{\"instruction\": \"a\", \"output\": \n";
    assert_int_equal(test_write_file(bad, lines, strlen(lines)), 0);
    snprintf(want, sizeof want, "%s:3: invalid JSON", bad);
    run_fails(&o, want);

    /* line 3 has overlapping error spans */
    const char *spans = "{\"instruction\": \"a\", \"output\": \" b\", \"judgment\": \"c\"}\n"
                        "\n"
                        "{\"instruction\": \"a\", \"output\": \" red kite\", \"judgment\": \"c\", "
                        "\"error_spans\": [[1, 4], [3, 8]]}\n";
    assert_int_equal(test_write_file(bad, spans, strlen(spans)), 0);
    snprintf(want, sizeof want, "%s:3: field \"error_spans\", span 1", bad);
    run_fails(&o, want);

    /* the same in a CUT JSON array: named by record index */
    char bad_json[1300];
    snprintf(bad_json, sizeof bad_json, "%s/bad.json", dir);
    const char *array = "[{\"instruction\": \"a\", \"output\": \" b\", \"judgment\": \"c\"},\n"
                        " {\"instruction\": \"a\", \"output\": \" red\", \"judgment\": \"c\", "
                        "\"error_spans\": [[1, 9]]}]\n";
    assert_int_equal(test_write_file(bad_json, array, strlen(array)), 0);
    o.judgments = bad_json;
    snprintf(want, sizeof want, "%s: record 1: field \"error_spans\", span 0", bad_json);
    run_fails(&o, want);

    /* a missing field */
    const char *missing = "{\"instruction\": \"a\", \"judgment\": \"c\"}\n";
    assert_int_equal(test_write_file(bad, missing, strlen(missing)), 0);
    o.judgments = bad;
    snprintf(want, sizeof want, "%s:1: missing field \"output\"", bad);
    run_fails(&o, want);
    char path[1400];
    snprintf(path, sizeof path, "%s/contrast.csv", out);
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0);

    /* options the flags do not check: the strip's record must be a contrasted negative */
    o = options(fixture, "bad", out, sizeof out);
    o.example = 1; /* a positive */
    assert_true(run_fails(&o, "record 1 is not a negative record"));
    o.example = 2;
    o.limit = 1; /* record 2 is the second negative */
    assert_true(run_fails(&o, "record 2 is not a negative record"));
    o = options(fixture, "bad", out, sizeof out);
    o.lambdas = "1.1,x";
    assert_false(run_fails(&o, "'1.1,x' is not a list"));
    o = options(fixture, "bad", out, sizeof out);
    o.plots = "gif";
    run_fails(&o, "'gif'");
    o = options(fixture, "bad", out, sizeof out);
    o.format = "xml";
    run_fails(&o, "'xml'");
}

/* The command: the same contrast.csv as the library, --show on stdout, what it wrote on
 * stderr; usage errors exit 2 naming the flag, failures 1. */
static void test_command(void **state) {
    (void)state;
    char out[1200], args[4096], a[1400], b[1400];
    ContrastPipelineOptions o = options(fixture, "lib", out, sizeof out);
    o.lambdas = "1.1,2";
    ContrastPipelineResult res;
    run_ok(&o, &res);
    contrast_pipeline_result_free(&res);
    snprintf(args, sizeof args,
             "contrast --judgments '%s' --out '%s/cmd' --plots none --threads 1 --lambda 1.1,2 "
             "--show 1",
             fixture, dir);
    char *so = NULL, *se = NULL;
    int rc = run_cutkit(NULL, args, &so, &se);
    if (rc != 0) fprintf(stderr, "%s", se);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(so, "--- example 0: "));
    assert_null(strstr(so, "--- example 2"));
    assert_non_null(strstr(se, "contrast.csv: 3 examples"));
    free(so);
    free(se);
    snprintf(a, sizeof a, "%s/contrast.csv", out);
    snprintf(b, sizeof b, "%s/cmd/contrast.csv", dir);
    size_t na, nb;
    char *ta = test_read_file(a, &na), *tb = test_read_file(b, &nb);
    assert_non_null(ta);
    assert_non_null(tb);
    assert_int_equal(na, nb);
    assert_memory_equal(ta, tb, na);
    free(ta);
    free(tb);

    snprintf(args, sizeof args, "contrast --judgments '%s/nope.jsonl' --out '%s/bad'", dir, dir);
    assert_int_equal(run_cutkit(NULL, args, NULL, &se), 1);
    assert_non_null(strstr(se, "cutkit contrast: "));
    assert_non_null(strstr(se, "nope.jsonl: cannot open"));
    free(se);
    const char *usage[][2] = {
        {"--lambda 1.1,x", "--lambda"},
        {"--example 1", "--example 1"},
        {"--plots gif", "--plots"},
        {"--judgment-format xml", "--judgment-format"},
    };
    for (size_t i = 0; i < sizeof usage / sizeof usage[0]; i++) {
        snprintf(args, sizeof args, "contrast --judgments '%s' --out '%s/bad' %s", fixture, dir,
                 usage[i][0]);
        assert_int_equal(run_cutkit(NULL, args, NULL, &se), 2);
        assert_non_null(strstr(se, usage[i][1]));
        free(se);
    }
    snprintf(args, sizeof args, "contrast --out '%s/bad'", dir);
    assert_int_equal(run_cutkit(NULL, args, NULL, &se), 2);
    assert_non_null(strstr(se, "--judgments"));
    free(se);
}

/* --base-dtype: a bf16 folder held as stored contrasts as the same folder widened to f32 (the
 * same weight values; only the products' summation may differ), and the comment line says how
 * it was held; the embedded model cannot be held as bf16. */
static void test_base_dtype(void **state) {
    (void)state;
    char folder[1200], args[4096], out_f32[1200], out_bf16[1200], path[1300];
    snprintf(folder, sizeof folder, "%s/bf16_model", dir);
    snprintf(args, sizeof args, "convert --to '%s' --dtype bf16", folder);
    assert_int_equal(run_cutkit(NULL, args, NULL, NULL), 0);
    ContrastPipelineOptions o = options(fixture, "held_f32", out_f32, sizeof out_f32);
    o.model = folder;
    ContrastPipelineResult res;
    run_ok(&o, &res);
    contrast_pipeline_result_free(&res);
    o = options(fixture, "held_bf16", out_bf16, sizeof out_bf16);
    o.model = folder;
    o.base_dtype = WEIGHT_BF16;
    run_ok(&o, &res);
    contrast_pipeline_result_free(&res);
    Table a, b;
    snprintf(path, sizeof path, "%s/contrast.csv", out_f32);
    char *comment_a = read_table(path, &a);
    snprintf(path, sizeof path, "%s/contrast.csv", out_bf16);
    char *comment_b = read_table(path, &b);
    assert_non_null(strstr(comment_a, "(held as f32, fp32 products)"));
    assert_non_null(strstr(comment_b, "(held as bf16, fp32 products)"));
    assert_int_equal(a.n_rows, b.n_rows);
    assert_int_equal(a.n_cols, b.n_cols);
    assert_true(a.n_rows > 10);
    for (int c = 0; c < a.n_cols; c++) {
        const int numeric = !strcmp(cell(&a, 0, c), "log_pa") || !strcmp(cell(&a, 0, c), "log_pm");
        for (int r = 1; r < a.n_rows; r++)
            if (numeric)
                assert_true(fabs(atof(cell(&a, r, c)) - atof(cell(&b, r, c))) < 1e-5);
            else if (strcmp(cell(&a, 0, c), "log_ratio") != 0)
                assert_string_equal(cell(&a, r, c), cell(&b, r, c));
    }
    table_free(&a);
    table_free(&b);
    free(comment_a);
    free(comment_b);
    o = options(fixture, "held_embedded", out_bf16, sizeof out_bf16);
    o.base_dtype = WEIGHT_BF16;
    run_fails(&o, "--base-dtype bf16 needs a Hugging Face folder");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_round_trip_and_show),
        cmocka_unit_test(test_csv_matches_score),
        cmocka_unit_test(test_detection_json_matches_library),
        cmocka_unit_test(test_lambda_grid),
        cmocka_unit_test(test_parse_lambdas),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_command),
        cmocka_unit_test(test_base_dtype),
        cmocka_unit_test(test_figures), /* last: it may skip its image half */
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
