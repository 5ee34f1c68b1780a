/* test_score_ids.c — scoring token ids (score_ids, `cutkit score --ids` and {"ids": [...]}
 * lines) on the embedded model: the numbers of the text path for the same tokens, refusals of
 * ids out of the vocabulary, non-integers, empty and over-long sequences naming file, line and
 * field; a llama2.c file with no tokenizer beside it scored from the command line; and
 * `--compute bf16` near the fp32 numbers, saying so on its lines. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include <cjson/cJSON.h>

#include "formats/llama2c.h"
#include "formats/lm.h"
#include "model/matmul.h"
#include "model/score_text.h"

static LanguageModel lm;
static char *dir;

static const char TEXT[] = "Once upon a time, there was a little girl named Lily.";

static int setup(void **state) {
    (void)state;
    CkError err = {{0}};
    dir = test_temp_dir();
    return lm_open(&lm, NULL, NULL, &err);
}

static int teardown(void **state) {
    (void)state;
    lm_close(&lm);
    int rc = test_remove_dir(dir);
    free(dir);
    return rc;
}

/* The ids of a text score exactly as the text does. */
static void test_same_as_text(void **state) {
    (void)state;
    TextScore t, s;
    CkError err = {{0}};
    assert_int_equal(score_text(&lm.model, &lm.tokenizer, NULL, TEXT, &t, &err), 0);
    assert_int_equal(score_ids(&lm.model, NULL, t.ids, t.n, &s, &err), 0);
    assert_int_equal(s.n, t.n);
    assert_memory_equal(s.ids, t.ids, sizeof(int) * (size_t)t.n);
    for (int i = 0; i + 1 < t.n; i++) assert_close(s.logprobs[i], t.logprobs[i], 0);
    assert_close(s.sum, t.sum, 0);
    assert_close(s.mean_nll, t.mean_nll, 0);
    score_text_free(&s);
    /* one id: nothing to predict */
    assert_int_equal(score_ids(&lm.model, NULL, t.ids, 1, &s, &err), 0);
    assert_int_equal(s.n, 1);
    assert_close(s.sum, 0, 0);
    score_text_free(&s);
    score_text_free(&t);
}

static void test_refusals(void **state) {
    (void)state;
    TextScore s;
    CkError err = {{0}};
    int ids[3] = {1, 512, 3};
    assert_int_equal(score_ids(&lm.model, NULL, ids, 3, &s, &err), -1);
    assert_string_equal(err.msg, "element 1: id 512 is outside the model's vocabulary [0, 512)");
    assert_null(s.ids);
    ids[1] = -1;
    assert_int_equal(score_ids(&lm.model, NULL, ids, 3, &s, &err), -1);
    assert_non_null(strstr(err.msg, "element 1: id -1"));
    assert_int_equal(score_ids(&lm.model, NULL, ids, 0, &s, &err), -1);
    assert_string_equal(err.msg, "expected at least one token id");
    int *many = calloc(513, sizeof(int));
    assert_int_equal(score_ids(&lm.model, NULL, many, 513, &s, &err), -1);
    assert_string_equal(err.msg, "513 token ids; the model's context is 512");
    free(many);
}

static int cutkit(const char *args, const char *input_name, char **out, char **errout) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' score %s --input '%s'", dir, CUTKIT_BINARY, args,
             input_name);
    return test_run(cmd, out, errout);
}

static void write_in(const char *name, const char *text) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(test_write_file(path, text, strlen(text)), 0);
}

/* A model file with no tokenizer beside it, scored by ids: the lines the text gives. */
static void test_cli_ids(void **state) {
    (void)state;
    char path[700];
    snprintf(path, sizeof path, "%s/model.bin", dir);
    CkError err = {{0}};
    assert_int_equal(llama2c_save(&lm.model, path, &err), 0);
    char *want = NULL, *got = NULL;
    char line[600];
    snprintf(line, sizeof line, "{\"text\": \"%s\"}\n", TEXT);
    write_in("text.jsonl", line);
    assert_int_equal(cutkit("", "text.jsonl", &want, NULL), 0);
    cJSON *w = cJSON_Parse(want);
    char *ids = cJSON_PrintUnformatted(cJSON_GetObjectItem(w, "tokens"));
    snprintf(line, sizeof line, "{\"ids\": %s}\n{\"ids\": %s}\n", ids, ids);
    write_in("ids.jsonl", line);
    assert_int_equal(cutkit("--ids --model model.bin", "ids.jsonl", &got, NULL), 0);
    char twice[8192];
    snprintf(twice, sizeof twice, "%s%s", want, want);
    assert_string_equal(got, twice);
    free(got);
    /* an ids line among text lines, without --ids */
    assert_int_equal(cutkit("", "ids.jsonl", &got, NULL), 0);
    assert_string_equal(got, twice);
    free(got);
    free(ids);
    cJSON_Delete(w);
    free(want);
}

static void expect_cli_error(const char *args, const char *input, const char *want) {
    write_in("bad.jsonl", input);
    char *errout = NULL;
    int status = cutkit(args, "bad.jsonl", NULL, &errout);
    if (!strstr(errout, want)) fprintf(stderr, "stderr was: %s\nwanted: %s\n", errout, want);
    assert_int_equal(status, 1);
    assert_non_null(strstr(errout, want));
    free(errout);
}

static void test_cli_bad_ids(void **state) {
    (void)state;
    expect_cli_error("--ids", "{\"ids\": [1, 2]}\n{\"ids\": [1, 600]}\n",
                     "bad.jsonl:2: field \"ids\": element 1: id 600 is outside the model's "
                     "vocabulary [0, 512)");
    expect_cli_error("--ids", "{\"ids\": [1, 2.5]}\n",
                     "bad.jsonl:1: field \"ids\": element 1: expected a non-negative integer "
                     "token id, got 2.5");
    expect_cli_error("--ids", "{\"ids\": [1, \"7\"]}\n",
                     "bad.jsonl:1: field \"ids\": element 1: expected a non-negative integer "
                     "token id, got \"7\"");
    expect_cli_error("--ids", "{\"ids\": 7}\n",
                     "bad.jsonl:1: field \"ids\": expected an array of token ids");
    expect_cli_error("--ids", "{\"ids\": []}\n",
                     "bad.jsonl:1: field \"ids\": expected at least one token id");
    expect_cli_error("--ids", "{\"text\": \"a\"}\n",
                     "bad.jsonl:1: expected a JSON object with an \"ids\" array");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' score --ids --text a", CUTKIT_BINARY);
    assert_int_equal(test_run(cmd, NULL, NULL), 2);
}

/* --compute bf16: every product's inputs rounded to bf16 (8 significant bits, so each moves by
 * up to 2^-9 of itself); through the embedded model's 5 layers the log-probs of TEXT moved by
 * 2.2e-3 nats at most when this was written, and the test allows 0.02 a token. The line says
 * "compute": "bf16"; an fp32 line does not carry the key. */
static void test_cli_compute(void **state) {
    (void)state;
    CkError err = {{0}};
    if (matmul_bf16_available(&err) != 0) {
        test_missing_reference(err.msg); /* neither oneDNN nor avx512_bf16 here */
        return;
    }
    char line[600];
    snprintf(line, sizeof line, "{\"text\": \"%s\"}\n", TEXT);
    write_in("compute.jsonl", line);
    char *fp32 = NULL, *bf16 = NULL;
    assert_int_equal(cutkit("", "compute.jsonl", &fp32, NULL), 0);
    assert_int_equal(cutkit("--compute bf16", "compute.jsonl", &bf16, NULL), 0);
    cJSON *a = cJSON_Parse(fp32), *b = cJSON_Parse(bf16);
    assert_non_null(a);
    assert_non_null(b);
    assert_null(cJSON_GetObjectItem(a, "compute"));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(b, "compute")), "bf16");
    const cJSON *la = cJSON_GetObjectItem(a, "logprobs"), *lb = cJSON_GetObjectItem(b, "logprobs");
    assert_int_equal(cJSON_GetArraySize(la), cJSON_GetArraySize(lb));
    assert_true(cJSON_GetArraySize(la) > 5);
    double worst = 0;
    for (int i = 0; i < cJSON_GetArraySize(la); i++)
        worst = fmax(worst, fabs(cJSON_GetArrayItem(la, i)->valuedouble -
                                 cJSON_GetArrayItem(lb, i)->valuedouble));
    printf("  bf16 against fp32: %.3g nats at most\n", worst);
    assert_true(worst > 0.0); /* the rounding happened */
    assert_true(worst < 0.02);
    cJSON_Delete(a);
    cJSON_Delete(b);
    free(fp32);
    free(bf16);
    assert_int_equal(cutkit("--compute fp16", "compute.jsonl", NULL, NULL), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_text), cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_cli_ids),      cmocka_unit_test(test_cli_bad_ids),
        cmocka_unit_test(test_cli_compute),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
