/* test_corpus.c — training text to token sequences: plain-text windows, JSONL text and
 * prompt/response records (prompt masked), malformed lines with file:line (blank lines
 * counted), and the shuffled cursor that resumes exactly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include "datasets/corpus.h"
#include "formats/embedded.h"

static Tokenizer tok;
static char *dir;

static int setup(void **state) {
    (void)state;
    size_t size;
    const void *data = embedded_tokenizer(&size);
    CkError err = {{0}};
    if (tokenizer_load_llama2c(&tok, data, size, 512, &err) != 0) return -1;
    dir = test_temp_dir();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tokenizer_free(&tok);
    int rc = test_remove_dir(dir);
    free(dir);
    return rc;
}

static char *write_tmp(const char *name, const char *text) {
    char *path = malloc(600);
    snprintf(path, 600, "%s/%s", dir, name);
    assert_int_equal(test_write_file(path, text, strlen(text)), 0);
    return path;
}

static void test_plain_text_windows(void **state) {
    (void)state;
    const char *text = "Once upon a time, there was a little girl named Lily. She loved to play "
                       "outside in the park.";
    char *path = write_tmp("story.txt", text);
    Corpus c;
    CkError err = {{0}};
    assert_int_equal(corpus_load(&c, path, &tok, 8, &err), 0);
    int *ids, n;
    assert_int_equal(tokenizer_encode(&tok, text, 0, 0, &ids, &n, &err), 0);
    /* windows of 8: BOS + 7 text tokens each, the text tokens in order */
    assert_int_equal(c.n_seqs, (n + 6) / 7);
    int k = 0;
    for (int s = 0; s < c.n_seqs; s++) {
        assert_int_equal(c.tokens[c.offsets[s]], 1);
        assert_int_equal(c.train[c.offsets[s]], 0);
        for (int i = c.offsets[s] + 1; i < c.offsets[s + 1]; i++) {
            assert_int_equal(c.tokens[i], ids[k++]);
            assert_int_equal(c.train[i], 1);
        }
    }
    assert_int_equal(k, n);
    free(ids);
    corpus_free(&c);
    free(path);
}

static void test_jsonl_records(void **state) {
    (void)state;
    char *path =
        write_tmp("sft.jsonl", "{\"text\": \"Tom ran.\"}\n\n"
                               "{\"prompt\": \"Q: Who ran?\\nA:\", \"response\": \"Tom\"}\n");
    Corpus c;
    CkError err = {{0}};
    assert_int_equal(corpus_load(&c, path, &tok, 64, &err), 0);
    assert_int_equal(c.n_seqs, 2);
    /* the prompt's tokens are not targets; the response and its EOS are */
    int *prompt, np, *response, nr;
    assert_int_equal(tokenizer_encode(&tok, "Q: Who ran?\nA:", 1, 0, &prompt, &np, &err), 0);
    assert_int_equal(tokenizer_encode(&tok, "Tom", 0, 1, &response, &nr, &err), 0);
    int off = c.offsets[1];
    assert_int_equal(c.offsets[2] - off, np + nr);
    for (int i = 0; i < np; i++) assert_int_equal(c.train[off + i], 0);
    for (int i = 0; i < nr; i++) {
        assert_int_equal(c.tokens[off + np + i], response[i]);
        assert_int_equal(c.train[off + np + i], 1);
    }
    assert_int_equal(c.tokens[c.offsets[2] - 1], 2); /* EOS */
    free(prompt);
    free(response);
    corpus_free(&c);
    free(path);
}

static void expect_error(const char *name, const char *text, const char *suffix) {
    char *path = write_tmp(name, text);
    Corpus c;
    CkError err = {{0}};
    assert_int_equal(corpus_load(&c, path, &tok, 64, &err), -1);
    char expect[800];
    snprintf(expect, sizeof expect, "%s%s", path, suffix);
    assert_string_equal(err.msg, expect);
    free(path);
}

static void test_malformed(void **state) {
    (void)state;
    expect_error("a.jsonl", "{\"text\": \"ok\"}\n[1, 2]\n", ":2: expected a JSON object");
    expect_error("b.jsonl", "{\"text\": 5}\n", ":1: field \"text\" must be a string");
    expect_error("c.jsonl", "{\"prompt\": \"x\"}\n", ":1: field \"response\" must be a string");
    expect_error("d.jsonl", "{\"input\": \"x\"}\n",
                 ":1: expected a \"text\" field, or \"prompt\" and \"response\"");
    expect_error("e.txt", "", ": no training text");
}

/* Blank lines count: an error after them names the line as an editor shows it (the reader
 * used to skip them uncounted and name line 2 here). */
static void test_line_numbers_after_blank_lines(void **state) {
    (void)state;
    expect_error("f.jsonl", "{\"text\": \"ok\"}\n\n[1, 2]\n", ":3: expected a JSON object");
    expect_error("g.jsonl", "\n  \n{\"text\": \"ok\"}\r\n\t\r\n{\"text\": 5}\n",
                 ":5: field \"text\" must be a string");
    /* a last line without its newline is still read */
    char *path = write_tmp("h.jsonl", "{\"text\": \"a\"}\n\n{\"text\": \"b\"}");
    Corpus c;
    CkError err = {{0}};
    assert_int_equal(corpus_load(&c, path, &tok, 64, &err), 0);
    assert_int_equal(c.n_seqs, 2);
    corpus_free(&c);
    free(path);
}

static void test_cursor_resumes(void **state) {
    (void)state;
    CorpusCursor a, b;
    CkError err = {{0}};
    assert_int_equal(corpus_cursor_init(&a, 10, 5, 0, 0, &err), 0);
    int first[25];
    for (int i = 0; i < 25; i++) first[i] = corpus_cursor_next(&a);
    /* an epoch is a permutation */
    int seen[10] = {0};
    for (int i = 0; i < 10; i++) seen[first[i]]++;
    for (int i = 0; i < 10; i++) assert_int_equal(seen[i], 1);
    /* epochs differ */
    assert_memory_not_equal(first, first + 10, 10 * sizeof(int));
    /* resume at epoch 1, position 3 (= item 13) */
    assert_int_equal(corpus_cursor_init(&b, 10, 5, 1, 3, &err), 0);
    for (int i = 13; i < 25; i++) assert_int_equal(corpus_cursor_next(&b), first[i]);
    corpus_cursor_free(&a);
    corpus_cursor_free(&b);
    assert_int_equal(corpus_cursor_init(&a, 10, 5, 0, 11, &err), -1);
    assert_string_equal(err.msg, "data cursor (epoch 0, position 11) outside a corpus of 10");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_text_windows),
        cmocka_unit_test(test_jsonl_records),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_line_numbers_after_blank_lines),
        cmocka_unit_test(test_cursor_resumes),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
