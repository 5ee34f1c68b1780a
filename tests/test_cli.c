/* test_cli.c — the cutkit program as a user meets it: the embedded model generates the
 * reference story with no files, flags are listed with defaults, bad input exits 2 (flags)
 * or 1 (files) with one line naming the problem. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

static char *run(const char *args, int *status, char **err) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s", CUTKIT_BINARY, args);
    char *out = NULL;
    *status = test_run(cmd, &out, err);
    return out;
}

static void test_generate_embedded_greedy(void **state) {
    (void)state;
    int status;
    char *err;
    char *out = run("generate --steps 256", &status, &err);
    assert_int_equal(status, 0);
    assert_non_null(strstr(err, "tokens/s"));
    char *path = test_shared_path("models/stories260K/expected_greedy_from_bos_256.txt");
    if (path) {
        size_t size;
        char *expected = test_read_file(path, &size);
        /* stdout is the story plus one closing newline */
        assert_int_equal(strlen(out), size + 1);
        assert_memory_equal(out, expected, size);
        free(expected);
        free(path);
    } else {
        assert_true(strncmp(out, "Once upon a time, there was a little girl named Lily.", 53) == 0);
    }
    free(out);
    free(err);
}

static void test_generate_prompt_and_sampling(void **state) {
    (void)state;
    int status;
    char *err1, *err2;
    char *a = run("generate --prompt 'Tom had a' --steps 30 --temperature 0.8 --seed 5 "
                  "--threads 1",
                  &status, &err1);
    assert_int_equal(status, 0);
    char *b = run("generate --prompt 'Tom had a' --steps 30 --temperature=0.8 --seed=5 "
                  "--threads 2",
                  &status, &err2);
    assert_int_equal(status, 0);
    assert_string_equal(a, b); /* seeded: same text, whatever the thread count */
    assert_true(strncmp(a, "Tom had a", 9) == 0);
    free(a);
    free(b);
    free(err1);
    free(err2);
}

static void test_help_lists_flags_with_defaults(void **state) {
    (void)state;
    int status;
    char *err;
    char *out = run("help generate", &status, &err);
    assert_int_equal(status, 0);
    const char *expect[] = {"--steps N", "(default: 256)", "--temperature X", "(default: 0)",
                            "--top-p X", "(default: 0.9)", "--seed N",        "(default: 42)",
                            "--model S", "--threads N"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        assert_non_null(strstr(out, expect[i]));
    free(out);
    free(err);
    out = run("help", &status, &err);
    assert_int_equal(status, 0);
    assert_non_null(strstr(out, "generate"));
    free(out);
    free(err);
}

static void expect_error(const char *args, int code, const char *message) {
    int status;
    char *err;
    char *out = run(args, &status, &err);
    assert_int_equal(status, code);
    if (!strstr(err, message)) printf("stderr was: %s\n", err);
    assert_non_null(strstr(err, message));
    /* one line */
    assert_true(strchr(err, '\n') == err + strlen(err) - 1);
    free(out);
    free(err);
}

static void test_bad_input(void **state) {
    (void)state;
    expect_error("generate --stepz 3", 2,
                 "cutkit generate: unknown flag '--stepz' (see 'cutkit help generate')");
    expect_error("generate --steps abc", 2,
                 "cutkit generate: --steps expects an integer, got 'abc'");
    expect_error("generate --steps -4", 2,
                 "cutkit generate: --steps must be between 0 and 1e+06, got '-4'");
    expect_error("generate --top-p 1.5", 2,
                 "cutkit generate: --top-p must be between 1e-06 and 1, got '1.5'");
    expect_error("generate --temperature nan", 2,
                 "cutkit generate: --temperature expects a number, got 'nan'");
    expect_error("generate --steps", 2, "cutkit generate: --steps needs a value");
    expect_error("frobnicate", 2, "cutkit: unknown command 'frobnicate' (see 'cutkit help')");
    expect_error("generate --model /nonexistent/model.bin", 1,
                 "cutkit generate: /nonexistent/model.bin: cannot open: No such file or directory");
}

/* convert: embedded -> Hugging Face folder -> llama2.c gives the original weight bytes, and
 * generation from the folder equals generation from the embedded model. */
static void test_convert_round_trip(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    char args[1024];
    int status;
    char *err, *out;
    snprintf(args, sizeof args, "convert --to '%s/hf' --dtype f32", dir);
    out = run(args, &status, &err);
    assert_int_equal(status, 0);
    free(out);
    free(err);
    snprintf(args, sizeof args, "convert --from '%s/hf' --to '%s/back.bin'", dir, dir);
    out = run(args, &status, &err);
    assert_int_equal(status, 0);
    free(out);
    free(err);
    char path[600];
    snprintf(path, sizeof path, "%s/back.bin", dir);
    size_t size, orig_size;
    char *back = test_read_file(path, &size);
    char *orig = test_read_file(CUTKIT_SOURCE_DIR "/core/formats/data/stories260K.bin", &orig_size);
    assert_int_equal(size, orig_size);
    /* weights: everything before the legacy RoPE tables (header + 260,032 floats) */
    assert_memory_equal(back, orig, 28 + 260032 * 4);
    free(back);
    free(orig);
    snprintf(args, sizeof args, "convert --to '%s/x' --dtype f8", dir);
    out = run(args, &status, &err);
    assert_int_equal(status, 2);
    assert_non_null(strstr(err, "--dtype expects f32, f16 or bf16, got 'f8'"));
    free(out);
    free(err);
    assert_int_equal(test_remove_dir(dir), 0);
    free(dir);
}

/* --settings FILE: flags from a JSON object, overridden by the command line; bad files and
 * unknown names refused with one line. */
static void test_settings_file(void **state) {
    (void)state;
    char *dir = test_temp_dir();
    char path[600], args[1024];
    snprintf(path, sizeof path, "%s/gen.json", dir);
    const char *json =
        "{\"steps\": 12, \"prompt\": \"Tom\", \"temperature\": 0, \"no-stop\": true}";
    assert_int_equal(test_write_file(path, json, strlen(json)), 0);
    int status;
    char *err, *out;
    snprintf(args, sizeof args, "generate --settings '%s'", path);
    out = run(args, &status, &err);
    assert_int_equal(status, 0);
    assert_true(strncmp(out, "Tom", 3) == 0);
    assert_non_null(strstr(err, "12 tokens in"));
    free(out);
    free(err);
    snprintf(args, sizeof args, "generate --settings='%s' --steps 5", path);
    out = run(args, &status, &err);
    assert_int_equal(status, 0);
    assert_non_null(strstr(err, "5 tokens in")); /* the command line wins */
    free(out);
    free(err);
    const char *bad = "{\"stepz\": 3}";
    assert_int_equal(test_write_file(path, bad, strlen(bad)), 0);
    snprintf(args, sizeof args, "generate --settings '%s'", path);
    out = run(args, &status, &err);
    assert_int_equal(status, 2);
    assert_non_null(strstr(err, "unknown setting 'stepz' (see 'cutkit help generate')"));
    free(out);
    free(err);
    const char *wrong = "{\"steps\": \"many\"}";
    assert_int_equal(test_write_file(path, wrong, strlen(wrong)), 0);
    out = run(args, &status, &err);
    assert_int_equal(status, 2);
    assert_non_null(strstr(err, "--steps expects an integer, got 'many'"));
    free(out);
    free(err);
    assert_int_equal(test_remove_dir(dir), 0);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_embedded_greedy),
        cmocka_unit_test(test_generate_prompt_and_sampling),
        cmocka_unit_test(test_help_lists_flags_with_defaults),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_convert_round_trip),
        cmocka_unit_test(test_settings_file),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
