/* test_eval_generate.c — `cutkit eval generate` on the embedded model: a valid
 * model_outputs.json, greedy responses equal to `cutkit generate` on the same prompt,
 * determinism by seed, resuming after a partial file gives the uninterrupted run's bytes,
 * stop strings, and the AlpacaEval instructions of the shared data. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include "eval/outputs.h"
#include "datasets/templates.h"

static char *dir;

static int setup(void **state) {
    (void)state;
    dir = test_temp_dir();
    char path[600];
    snprintf(path, sizeof path, "%s/ins.json", dir);
    const char *ins =
        "[\"Tell me a story about a cat.\","
        " {\"instruction\": \"Write about a dog.\", \"dataset\": \"pets\"},"
        " {\"instruction\": \"Continue the story:\", \"input\": \"Tom had a red car.\"},"
        " \"Once upon a time\"]";
    return test_write_file(path, ins, strlen(ins));
}

static int teardown(void **state) {
    (void)state;
    int rc = test_remove_dir(dir);
    free(dir);
    return rc;
}

static int cutkit(const char *args, char **out, char **errout) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s", dir, CUTKIT_BINARY, args);
    char *o = NULL;
    int status = test_run(cmd, &o, errout);
    if (out)
        *out = o;
    else
        free(o);
    return status;
}

static char *slurp(const char *name) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *t = test_read_file(path, NULL);
    assert_non_null(t);
    return t;
}

static ModelOutputs load(const char *name) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ModelOutputs o;
    CkError err = {{0}};
    assert_int_equal(outputs_load(&o, path, 1, &err), 0);
    return o;
}

static void test_greedy(void **state) {
    (void)state;
    assert_int_equal(cutkit("eval generate --instructions ins.json --out greedy.json "
                            "--max-tokens 40",
                            NULL, NULL),
                     0);
    ModelOutputs o = load("greedy.json");
    assert_int_equal(o.n, 4);
    assert_string_equal(o.items[1].instruction, "Write about a dog.");
    assert_string_equal(o.items[1].dataset, "pets");
    assert_null(o.items[0].dataset);
    assert_string_equal(o.items[2].instruction, "Continue the story:\nTom had a red car.");
    for (int i = 0; i < 4; i++) {
        assert_string_equal(o.items[i].generator, "stories260K");
        assert_true(strlen(o.items[i].output) > 0);
        /* the same response from `cutkit generate` on the formatted Alpaca prompt */
        CkError err = {{0}};
        char *prompt =
            template_format(TEMPLATE_ALPACA_PROMPT_NO_INPUT, o.items[i].instruction, NULL, &err);
        char settings[700];
        snprintf(settings, sizeof settings, "%s/gen.json", dir);
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "prompt", prompt);
        cJSON_AddNumberToObject(s, "steps", 40);
        char *text = cJSON_PrintUnformatted(s);
        assert_int_equal(test_write_file(settings, text, strlen(text)), 0);
        free(text);
        cJSON_Delete(s);
        char *out = NULL;
        assert_int_equal(cutkit("generate --temperature 0 --settings gen.json", &out, NULL), 0);
        assert_memory_equal(out, prompt, strlen(prompt));
        const char *gen = out + strlen(prompt);
        while (*gen == ' ' || *gen == '\n') gen++;
        size_t len = strlen(gen);
        while (len && (gen[len - 1] == ' ' || gen[len - 1] == '\n')) len--;
        assert_int_equal(len, strlen(o.items[i].output));
        assert_memory_equal(gen, o.items[i].output, len);
        free(out);
        free(prompt);
    }
    /* a stop string: the response ends before its first occurrence */
    char stop[8];
    snprintf(stop, sizeof stop, "%.3s", o.items[0].output + 12);
    char args[256];
    snprintf(args, sizeof args,
             "eval generate --instructions ins.json --out stop.json --max-tokens 40 --limit 1 "
             "--stop '[\"%s\", \"zzzz\"]'",
             stop);
    assert_int_equal(cutkit(args, NULL, NULL), 0);
    ModelOutputs st = load("stop.json");
    assert_int_equal(st.n, 1);
    size_t cut = (size_t)(strstr(o.items[0].output, stop) - o.items[0].output);
    while (cut && o.items[0].output[cut - 1] == ' ') cut--;
    printf("  stop \"%s\": \"%s\"\n", stop, st.items[0].output);
    assert_int_equal(strlen(st.items[0].output), cut);
    assert_memory_equal(st.items[0].output, o.items[0].output, cut);
    outputs_free(&st);
    outputs_free(&o);
}

static void test_seed_and_resume(void **state) {
    (void)state;
    const char *common = "eval generate --instructions ins.json --max-tokens 30 --temperature 0.9";
    char args[512];
    snprintf(args, sizeof args, "%s --seed 5 --out a.json", common);
    assert_int_equal(cutkit(args, NULL, NULL), 0);
    snprintf(args, sizeof args, "%s --seed 5 --out b.json --save-every 1", common);
    assert_int_equal(cutkit(args, NULL, NULL), 0);
    snprintf(args, sizeof args, "%s --seed 6 --out c.json", common);
    assert_int_equal(cutkit(args, NULL, NULL), 0);
    char *a = slurp("a.json"), *b = slurp("b.json"), *c = slurp("c.json");
    assert_string_equal(a, b); /* deterministic by seed */
    assert_string_not_equal(a, c);
    free(b);
    free(c);
    /* a partial file (the first two records, as an interrupted run leaves it) resumes to the
     * uninterrupted run's bytes */
    ModelOutputs full = load("a.json");
    for (int i = 2; i < full.n; i++) {
        free(full.items[i].instruction), free(full.items[i].output);
        free(full.items[i].generator), free(full.items[i].dataset);
    }
    full.n = 2;
    char path[700];
    snprintf(path, sizeof path, "%s/partial.json", dir);
    CkError err = {{0}};
    assert_int_equal(outputs_save(&full, path, &err), 0);
    outputs_free(&full);
    char *errout = NULL;
    snprintf(args, sizeof args, "%s --seed 5 --out partial.json", common);
    assert_int_equal(cutkit(args, NULL, &errout), 0);
    assert_non_null(strstr(errout, "resuming after 2 of 4"));
    free(errout);
    char *resumed = slurp("partial.json");
    assert_string_equal(resumed, a);
    free(resumed);
    free(a);
    /* a file of other instructions is refused, not extended */
    const char *other =
        "[{\"instruction\": \"x\", \"output\": \"y\", \"generator\": \"stories260K\"}]";
    assert_int_equal(test_write_file(path, other, strlen(other)), 0);
    assert_int_equal(cutkit(args, NULL, &errout), 1);
    assert_non_null(strstr(errout, "record 0 is not instruction 0"));
    free(errout);
    assert_int_equal(cutkit("eval generate --out x.json", NULL, &errout), 2);
    free(errout);
}

/* The AlpacaEval instructions as the shared data holds them (the v2 reference's file). */
static void test_alpaca_eval_instructions(void **state) {
    (void)state;
    char *ref = test_shared_path("data/alpaca_eval/results/gpt4_1106_preview/model_outputs.json");
    if (!ref) skip();
    char args[1024];
    snprintf(args, sizeof args,
             "eval generate --instructions '%s' --out ae.json --limit 3 --max-tokens 16 "
             "--generator tiny",
             ref);
    assert_int_equal(cutkit(args, NULL, NULL), 0);
    ModelOutputs o = load("ae.json"), r;
    CkError err = {{0}};
    assert_int_equal(outputs_load(&r, ref, 1, &err), 0);
    assert_int_equal(r.n, 805);
    assert_int_equal(o.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(o.items[i].instruction, r.items[i].instruction);
        assert_string_equal(o.items[i].dataset, r.items[i].dataset);
        assert_string_equal(o.items[i].generator, "tiny");
    }
    outputs_free(&o);
    outputs_free(&r);
    free(ref);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_seed_and_resume),
        cmocka_unit_test(test_alpaca_eval_instructions),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
