/* test_tokenize_cli.c — `cutkit tokenize` as a user meets it: JSON lines in, one line out per
 * input line, the embedded tokenizer by default, tokenizer.json folders with --tokenizer,
 * --no-special and --decode, and malformed input reported with its line number (exit 1) or
 * bad flags (exit 2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

/* Runs `cutkit ARGS < input` and returns stdout; *status is the exit status. */
static char *run_with_input(const char *args, const char *input, int *status, char **err) {
    char *dir = test_temp_dir();
    char path[600], cmd[2048];
    snprintf(path, sizeof path, "%s/in.jsonl", dir);
    assert_int_equal(test_write_file(path, input, strlen(input)), 0);
    snprintf(cmd, sizeof cmd, "'%s' %s < '%s'", CUTKIT_BINARY, args, path);
    char *out = NULL;
    *status = test_run(cmd, &out, err);
    test_remove_dir(dir);
    free(dir);
    return out;
}

static void expect_output(const char *args, const char *input, const char *want) {
    int status;
    char *err;
    char *out = run_with_input(args, input, &status, &err);
    if (status != 0 || strcmp(out, want) != 0) {
        fprintf(stderr, "cutkit %s\n  stdout: %s\n  stderr: %s\n", args, out, err);
    }
    assert_int_equal(status, 0);
    assert_string_equal(out, want);
    free(out);
    free(err);
}

static void expect_failure(const char *args, const char *input, int code, const char *message) {
    int status;
    char *err;
    char *out = run_with_input(args, input, &status, &err);
    if (status != code || !strstr(err, message)) fprintf(stderr, "stderr was: %s\n", err);
    assert_int_equal(status, code);
    assert_non_null(strstr(err, message));
    assert_true(strchr(err, '\n') == err + strlen(err) - 1); /* one line */
    free(out);
    free(err);
}

/* The embedded tok512 (llama2.c): BOS unless --no-special; blank lines are skipped. */
static void test_embedded(void **state) {
    (void)state;
    expect_output("tokenize", "{\"text\": \"Once upon a time\"}\n\n{\"text\": \"\"}\n",
                  "[1,403,407,261,378]\n[1]\n");
    expect_output("tokenize --no-special", "{\"text\": \"Once upon a time\"}",
                  "[403,407,261,378]\n");
    expect_output("tokenize --decode", "[1,403,407,261,378]\n{\"ids\": []}\n",
                  "{\"text\": \"Once upon a time\"}\n{\"text\": \"\"}\n");
}

static char *fixture(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "models/tokenizers/%s", name);
    return test_shared_path(rel);
}

static void test_tokenizer_json(void **state) {
    (void)state;
    char *gpt2 = fixture("gpt2"), *tiny = fixture("tinyllama-1.1b-chat-v1.0");
    char *llama3 = fixture("llama3-8b-instruct");
    if (!gpt2 || !tiny || !llama3) {
        free(gpt2);
        free(tiny);
        free(llama3);
        skip();
    }
    char args[1200];
    const char *hello = "{\"text\": \"Hello world\"}\n";
    snprintf(args, sizeof args, "tokenize --tokenizer '%s'", gpt2);
    expect_output(args, hello, "[15496,995]\n");
    snprintf(args, sizeof args, "tokenize --tokenizer '%s/tokenizer.json' --decode", gpt2);
    expect_output(args, "[15496, 995, 50256]\n", "{\"text\": \"Hello world<|endoftext|>\"}\n");
    snprintf(args, sizeof args, "tokenize --tokenizer '%s'", tiny);
    expect_output(args, hello, "[1,15043,3186]\n");
    snprintf(args, sizeof args, "tokenize --tokenizer '%s' --no-special", tiny);
    expect_output(args, hello, "[15043,3186]\n");
    snprintf(args, sizeof args, "tokenize --tokenizer '%s' --decode", tiny);
    expect_output(args, "{\"ids\": [1, 15043, 3186, 2]}", "{\"text\": \"<s> Hello world</s>\"}\n");
    snprintf(args, sizeof args, "tokenize --tokenizer '%s' --decode --no-special", tiny);
    expect_output(args, "{\"ids\": [1, 15043, 3186, 2]}", "{\"text\": \"Hello world\"}\n");
    snprintf(args, sizeof args, "tokenize --tokenizer '%s'", llama3);
    expect_output(args, hello, "[128000,9906,1917]\n");

    /* Decoded text is escaped as JSON, and a cut character becomes U+FFFD. */
    snprintf(args, sizeof args, "tokenize --tokenizer '%s' --no-special", gpt2);
    int status;
    char *err;
    char *ids = run_with_input(args, "{\"text\": \"say \\\"hi\\\"\\n\\tthen \\u0001 \\u00e9\"}\n",
                               &status, &err);
    assert_int_equal(status, 0);
    free(err);
    snprintf(args, sizeof args, "tokenize --tokenizer '%s' --decode", gpt2);
    expect_output(args, ids, "{\"text\": \"say \\\"hi\\\"\\n\\tthen \\u0001 \xC3\xA9\"}\n");
    free(ids);
    expect_output(args, "[47249]", "{\"text\": \"\xEF\xBF\xBD\"}\n");
    free(gpt2);
    free(tiny);
    free(llama3);
}

static void test_bad_input(void **state) {
    (void)state;
    expect_failure("tokenize", "{\"text\": \"a\"}\n{\"text\": \"b\"\n", 1,
                   "cutkit tokenize: stdin line 2: not valid JSON");
    expect_failure("tokenize", "\n{\"txt\": \"a\"}\n", 1,
                   "cutkit tokenize: stdin line 2: expected an object with a \"text\" string");
    expect_failure("tokenize", "[1, 2]\n", 1,
                   "cutkit tokenize: stdin line 1: expected an object with a \"text\" string");
    expect_failure("tokenize", "{\"text\": \"a\\u0000b\"}\n", 1,
                   "cutkit tokenize: stdin line 1: \\u0000 in the text is not supported");
    expect_failure("tokenize --decode", "[1, 2]\n[1, 512]\n", 1,
                   "cutkit tokenize: stdin line 2: ids[1] is 512, not an id from 0 to 511");
    expect_failure("tokenize --decode", "[1, \"x\"]\n", 1,
                   "cutkit tokenize: stdin line 1: ids[1] is a non-number, not an id from 0 to "
                   "511");
    expect_failure("tokenize --decode", "[1.5]\n", 1,
                   "cutkit tokenize: stdin line 1: ids[0] is 1.5, not an id from 0 to 511");
    expect_failure("tokenize --decode", "{\"text\": \"a\"}\n", 1,
                   "cutkit tokenize: stdin line 1: expected an array of ids or an object with an "
                   "\"ids\" array");
    expect_failure("tokenize --tokenizer /nonexistent/tok.json", "", 1,
                   "cutkit tokenize: /nonexistent/tok.json: cannot open: No such file or "
                   "directory");
    expect_failure("tokenize --frobnicate", "", 2,
                   "cutkit tokenize: unknown flag '--frobnicate' (see 'cutkit help tokenize')");
    expect_failure("tokenize extra", "", 2, "cutkit tokenize: unexpected argument 'extra'");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedded),
        cmocka_unit_test(test_tokenizer_json),
        cmocka_unit_test(test_bad_input),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
