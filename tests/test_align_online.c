/* test_align_online.c — online_run (train/online_run.h): generate → judge → CUT-train → merge
 * rounds on the embedded model, with the synthetic world's judge, an external command and a
 * file; every stage resumable. The trainings are `cutkit train` children of the built binary;
 * `cutkit align-online` itself is checked for its exit codes and its last line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "datasets/synth.h"
#include "tests/test_util.h"
#include "train/online_run.h"
#include "util/utf8.h"

/* Every test works in a fresh temporary folder, removed afterwards even when it fails. */
static int make_temp(void **state) {
    *state = test_temp_dir();
    return *state ? 0 : -1;
}

static int remove_temp(void **state) {
    int rc = test_remove_dir(*state);
    free(*state);
    return rc;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static long mtime_ns(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    return (long)st.st_mtim.tv_sec * 1000000000L + st.st_mtim.tv_nsec;
}

/* A small synthetic world in dir/world. */
static void make_world(const char *dir) {
    SynthOptions o = synth_default_options();
    o.n_train = o.n_test = o.n_warmup = 8;
    SynthWorld w;
    CkError err = {{0}};
    char path[2048];
    snprintf(path, sizeof path, "%s/world", dir);
    assert_int_equal(mkdir(path, 0777), 0);
    assert_int_equal(synth_generate(&w, &o, &err), 0);
    assert_int_equal(synth_write(&w, path, &err), 0);
    synth_world_free(&w);
}

/* Runs two iterations of four responses in dir/run with the judge spec; returns online_run's
 * result, with its log in *log (malloc'd) and its error in err. */
static int align(const char *dir, const char *judge_spec, int lora, char **log, CkError *err) {
    char instructions[2048], out[2048], tpl[2048];
    snprintf(instructions, sizeof instructions, "%s/world/instructions.json", dir);
    snprintf(out, sizeof out, "%s/run", dir);
    snprintf(tpl, sizeof tpl, "%s/world/template.json", dir);
    OnlineRunOptions o;
    online_run_options_init(&o);
    o.instructions = instructions;
    o.out = out;
    o.template_path = tpl;
    o.iterations = 2;
    o.per_iteration = 4;
    o.max_tokens = 48;
    o.batch_size = 2;
    o.threads = 1;
    o.lora = lora;
    o.runner.binary = CUTKIT_BINARY;
    OnlineJudge judge;
    assert_int_equal(online_judge_open(&judge, judge_spec, 120, err), 0);
    o.judge = &judge;
    size_t log_len;
    o.log = open_memstream(log, &log_len);
    assert_non_null(o.log);
    OnlineRunResult result;
    int rc = online_run(&o, &result, err);
    fclose(o.log);
    online_judge_close(&judge);
    return rc;
}

/* Instruction pools: a JSON array or JSON lines (blank lines counted in the line numbers). */
static void test_instruction_pool(void **state) {
    const char *dir = *state;
    char path[2048];
    snprintf(path, sizeof path, "%s/pool.jsonl", dir);
    const char *lines = "{\"instruction\": \"Tell a story.\", \"input\": \"A cat.\"}\n\n"
                        "\"Write a poem.\"\n";
    assert_int_equal(test_write_file(path, lines, strlen(lines)), 0);
    InstructionPool pool;
    CkError err = {{0}};
    assert_int_equal(online_load_instructions(&pool, path, &err), 0);
    assert_int_equal(pool.n, 2);
    assert_non_null(strstr(pool.instructions[0], "Tell a story."));
    assert_non_null(strstr(pool.instructions[0], "A cat."));
    assert_string_equal(pool.instructions[1], "Write a poem.");
    online_instructions_free(&pool);
    const char *bad = "{\"instruction\": \"One.\"}\n\n{not json\n";
    assert_int_equal(test_write_file(path, bad, strlen(bad)), 0);
    assert_int_equal(online_load_instructions(&pool, path, &err), -1);
    assert_non_null(strstr(err.msg, "pool.jsonl:3: not a JSON object"));
    const char *array = "[\"One.\", {\"instruction\": \"Two.\"}]";
    assert_int_equal(test_write_file(path, array, strlen(array)), 0);
    assert_int_equal(online_load_instructions(&pool, path, &err), 0);
    assert_int_equal(pool.n, 2);
    assert_string_equal(pool.instructions[1], "Two.");
    online_instructions_free(&pool);
    /* text that training would refuse is refused here, where it can be named */
    const char *not_utf8 = "[\"One.\", {\"instruction\": \"Tw\xC3o.\"}]";
    assert_int_equal(test_write_file(path, not_utf8, strlen(not_utf8)), 0);
    assert_int_equal(online_load_instructions(&pool, path, &err), -1);
    assert_non_null(strstr(err.msg, "pool.jsonl: item 1: the instruction is not valid UTF-8"));
}

/* The model's bytes need not be UTF-8 (byte-fallback tokens, sampled hot): the responses are,
 * each ill-formed sequence replaced by U+FFFD, so that the judgments that quote them are. */
static void test_generations_are_utf8(void **state) {
    (void)state;
    LanguageModel lm;
    Template tpl;
    CkError err = {{0}};
    assert_int_equal(lm_open(&lm, NULL, NULL, &err), 0);
    assert_int_equal(template_default(&tpl, &err), 0);
    OnlineGenerateOptions g = {.max_tokens = 48, .temperature = 3.0f, .top_p = 1.0f, .seed = 7};
    int replaced = 0;
    for (int i = 0; i < 40; i++) {
        char *response = NULL;
        assert_int_equal(online_generate(&lm, &tpl, "Tell a story.", &g, i, &response, &err), 0);
        assert_true(utf8_valid(response, strlen(response)));
        replaced += strstr(response, UTF8_REPLACEMENT) != NULL;
        free(response);
    }
    printf("%d of 40 responses had an ill-formed sequence replaced\n", replaced);
    assert_true(replaced > 0); /* the case is exercised */
    template_free(&tpl);
    lm_close(&lm);
}

static void test_two_iterations_with_the_synthetic_judge(void **state) {
    const char *dir = *state;
    make_world(dir);
    char *log = NULL;
    CkError err = {{0}};
    assert_int_equal(align(dir, "synth", 0, &log, &err), 0);
    free(log);
    char path[2048];
    snprintf(path, sizeof path, "%s/run/summary.json", dir);
    char *summary = test_read_file(path, NULL);
    assert_non_null(summary);
    /* two iterations of four responses each, all judged */
    assert_non_null(strstr(summary, "\"iteration\":\t2"));
    assert_null(strstr(summary, "\"iteration\":\t3"));
    assert_non_null(strstr(summary, "\"responses\":\t4"));
    assert_non_null(strstr(summary, "\"judge_failures\":\t0"));
    free(summary);
    /* the judgments are training records whose verdicts are the judge's own; no journal and
     * no temporary file is left once a stage is complete */
    snprintf(path, sizeof path, "%s/run/iter-1/judgments.jsonl", dir);
    char *judged = test_read_file(path, NULL);
    assert_non_null(judged);
    int lines = 0;
    for (char *p = judged; (p = strchr(p, '\n')); p++) lines++;
    assert_int_equal(lines, 4);
    assert_non_null(strstr(judged, "\"judgment\":"));
    free(judged);
    snprintf(path, sizeof path, "%s/run/iter-1/judgments.jsonl.partial", dir);
    assert_false(exists(path));
    snprintf(path, sizeof path, "%s/run/iter-1/generations.jsonl.partial", dir);
    assert_false(exists(path));
    /* iteration 2 starts from iteration 1's model */
    snprintf(path, sizeof path, "%s/run/iter-1/train/model/model.safetensors", dir);
    assert_true(exists(path));
    snprintf(path, sizeof path, "%s/run/iter-2/done.json", dir);
    char *done = test_read_file(path, NULL);
    assert_non_null(done);
    assert_non_null(strstr(done, "iter-2/train/model"));
    free(done);

    /* Forget the end of iteration 2 (as if killed during its training): the rerun redoes only
     * the training, not the generations, and leaves iteration 1 alone. */
    char gen2[2048], train1[2048];
    snprintf(gen2, sizeof gen2, "%s/run/iter-2/generations.jsonl", dir);
    snprintf(train1, sizeof train1, "%s/run/iter-1/train/steps.jsonl", dir);
    long gen_before = mtime_ns(gen2), train_before = mtime_ns(train1);
    assert_int_equal(remove(path), 0);
    snprintf(path, sizeof path, "%s/run/iter-2/trained", dir);
    assert_int_equal(remove(path), 0);
    assert_int_equal(align(dir, "synth", 0, &log, &err), 0);
    assert_null(strstr(log, "iteration 1/2"));
    assert_non_null(strstr(log, "iteration 2/2"));
    free(log);
    assert_int_equal(mtime_ns(gen2), gen_before);
    assert_int_equal(mtime_ns(train1), train_before);
    snprintf(path, sizeof path, "%s/run/iter-2/done.json", dir);
    assert_true(exists(path));
}

/* A killed generation leaves a journal with a torn last line: the rerun cuts the torn line,
 * keeps the complete items and generates only the rest. */
static void test_generation_resumes_from_its_journal(void **state) {
    const char *dir = *state;
    make_world(dir);
    char *log = NULL;
    CkError err = {{0}};
    assert_int_equal(align(dir, "synth", 0, &log, &err), 0);
    free(log);
    char path[2048], partial[2100];
    snprintf(path, sizeof path, "%s/run/iter-1/generations.jsonl", dir);
    size_t size;
    char *complete = test_read_file(path, &size);
    assert_non_null(complete);
    /* two complete items and half of the third, as a killed writer leaves them */
    char *third = strchr(strchr(complete, '\n') + 1, '\n') + 1;
    size_t keep = (size_t)(third - complete) + 10;
    snprintf(partial, sizeof partial, "%s.partial", path);
    assert_int_equal(test_write_file(partial, complete, keep), 0);
    assert_int_equal(remove(path), 0);
    snprintf(path, sizeof path, "%s/run/iter-1/done.json", dir);
    assert_int_equal(remove(path), 0);
    assert_int_equal(align(dir, "synth", 0, &log, &err), 0);
    assert_non_null(strstr(log, "iteration 1/2"));
    free(log);
    /* the same four responses (item i is sampled with seed + i), and no journal left */
    snprintf(path, sizeof path, "%s/run/iter-1/generations.jsonl", dir);
    size_t again_size;
    char *again = test_read_file(path, &again_size);
    assert_non_null(again);
    assert_int_equal(again_size, size);
    assert_memory_equal(again, complete, size);
    assert_false(exists(partial));
    free(again);
    free(complete);
}

static void test_command_judge_and_lora_merge(void **state) {
    const char *dir = *state;
    make_world(dir);
    /* a judge that reads the request and criticises every response */
    char judge[2048], spec[2300];
    snprintf(judge, sizeof judge, "%s/judge.sh", dir);
    const char *script = "#!/bin/sh\ncat >/dev/null\necho '{\"judgment\": \"Too short.\"}'\n";
    assert_int_equal(test_write_file(judge, script, strlen(script)), 0);
    snprintf(spec, sizeof spec, "command:sh %s", judge);
    char *log = NULL;
    CkError err = {{0}};
    assert_int_equal(align(dir, spec, 1, &log, &err), 0);
    free(log);
    char path[2048];
    snprintf(path, sizeof path, "%s/run/iter-1/judgments.jsonl", dir);
    char *judged = test_read_file(path, NULL);
    assert_non_null(judged);
    assert_non_null(strstr(judged, "\"judgment\":\"Too short.\""));
    assert_null(strstr(judged, "\"judgment\":null"));
    free(judged);
    /* LoRA: the adapter is merged into the model the next iteration starts from */
    snprintf(path, sizeof path, "%s/run/iter-1/train/adapter/adapter_model.safetensors", dir);
    assert_true(exists(path));
    snprintf(path, sizeof path, "%s/run/iter-1/model/model.safetensors", dir);
    assert_true(exists(path));
}

/* A judge's answer that training could not read is the judge's failure, recorded as such, and
 * never a record of judgments.jsonl: bytes that are not UTF-8, a "judgment" that is not a
 * string, content after the JSON object. The other items are judged and trained on. */
static void test_judge_answers_are_validated(void **state) {
    const char *dir = *state;
    make_world(dir);
    char judge[2048], spec[2300];
    snprintf(judge, sizeof judge, "%s/judge.sh", dir);
    const char *script = "cat >/dev/null\n"
                         "n=$(cat \"$0.count\" 2>/dev/null || echo 0)\n"
                         "echo $((n + 1)) > \"$0.count\"\n"
                         "case $((n % 4)) in\n"
                         "0) printf 'Bad \\377 judgment\\n' ;;\n"
                         "1) echo '{\"judgment\": 5}' ;;\n"
                         "2) echo '{\"judgment\": \"Fine.\"} and more' ;;\n"
                         "3) echo '{\"judgment\": \"Too short.\"}' ;;\n"
                         "esac\n";
    assert_int_equal(test_write_file(judge, script, strlen(script)), 0);
    snprintf(spec, sizeof spec, "command:sh %s", judge);
    char *log = NULL;
    CkError err = {{0}};
    const int rc = align(dir, spec, 0, &log, &err);
    if (rc != 0) printf("%s\n%s\n", err.msg, log);
    free(log);
    assert_int_equal(rc, 0);
    for (int k = 1; k <= 2; k++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/run/iter-%d/judgments.jsonl", dir, k);
        size_t size;
        char *judged = test_read_file(path, &size);
        assert_non_null(judged);
        assert_true(utf8_valid(judged, size));
        assert_non_null(strstr(judged, "\"judgment\":\"Too short.\""));
        assert_null(strstr(judged, "Fine."));
        assert_int_equal(strchr(judged, '\n') - judged + 1, (long)size); /* one record */
        free(judged);
        snprintf(path, sizeof path, "%s/run/iter-%d/judge_failures.jsonl", dir, k);
        char *failed = test_read_file(path, &size);
        assert_non_null(failed);
        assert_true(utf8_valid(failed, size));
        assert_non_null(strstr(failed, "the judgment is not valid UTF-8 (byte 4)"));
        assert_non_null(strstr(failed, "without a string or null"));
        assert_non_null(strstr(failed, "something after its JSON object"));
        free(failed);
    }
}

/* Responses as the reference's scripts/generate.py keeps them (issue 13): stripped as Python's
 * str.strip() strips, and not cut at a later response marker. */
static void test_reference_responses(void **state) {
    (void)state;
    LanguageModel lm;
    Template tpl;
    CkError err = {{0}};
    assert_int_equal(lm_open(&lm, NULL, NULL, &err), 0);
    /* a "marker" the story model writes at once: "." */
    const char *json = "{\"prompt_no_input\": \"Task: {instruction}\\nStory:\", "
                       "\"prompt_no_input_judge\": \"{instruction} {judgment}\", "
                       "\"response_split\": \".\"}";
    assert_int_equal(template_parse(&tpl, json, "test", &err), 0);
    OnlineGenerateOptions g = {.max_tokens = 40, .temperature = 0, .top_p = 1};
    char *cut = NULL, *whole = NULL, *stripped = NULL;
    const char *ins = "Write a story about a girl named Sue.";
    assert_int_equal(online_generate(&lm, &tpl, ins, &g, 0, &cut, &err), 0);
    g.keep_after_split = 1;
    assert_int_equal(online_generate(&lm, &tpl, ins, &g, 0, &whole, &err), 0);
    g.strip = 1;
    assert_int_equal(online_generate(&lm, &tpl, ins, &g, 0, &stripped, &err), 0);
    printf("cut: [%s]\nwhole: [%s]\nstripped: [%s]\n", cut, whole, stripped);
    assert_null(strchr(cut, '.'));
    assert_non_null(strchr(whole, '.'));
    assert_true(strncmp(whole, cut, strlen(cut)) == 0); /* greedy: the same text, longer */
    /* the story model starts with a space: gone, and nothing else */
    assert_true(whole[0] == ' ' || whole[0] == '\n');
    const char *body = whole;
    while (*body == ' ' || *body == '\n') body++;
    size_t n = strlen(body);
    while (n > 0 && (body[n - 1] == ' ' || body[n - 1] == '\n')) n--;
    assert_int_equal(strlen(stripped), n);
    assert_memory_equal(stripped, body, n);
    free(cut);
    free(whole);
    free(stripped);
    template_free(&tpl);
    lm_close(&lm);
}

/* The reference's loop (align-online --preset reference, scaled down): `cutkit train --preset
 * reference-online` with the Align-P ratio and the cutoff, merges in f16, OUT/config.json. */
static void test_reference_loop(void **state) {
    const char *dir = *state;
    make_world(dir);
    char instructions[2048], out[2048], tpl[2048], path[2200];
    snprintf(instructions, sizeof instructions, "%s/world/instructions.json", dir);
    snprintf(out, sizeof out, "%s/ref", dir);
    snprintf(tpl, sizeof tpl, "%s/world/template.json", dir);
    OnlineRunOptions o;
    online_run_options_init(&o);
    o.instructions = instructions;
    o.out = out;
    o.template_path = tpl;
    o.iterations = 1;
    o.per_iteration = 8;
    o.max_tokens = 48;
    o.temperature = 0;
    o.keep_after_split = o.strip = 1;
    o.preset = "reference";
    o.train_preset = "reference-online";
    o.align_p_ratio = 0.25;
    o.warmup = 100;
    o.lora = 1;
    o.merge_dtype = "f16";
    o.threads = 1;
    o.runner.binary = CUTKIT_BINARY;
    OnlineJudge judge;
    CkError err = {{0}};
    assert_int_equal(online_judge_open(&judge, "synth", 120, &err), 0);
    o.judge = &judge;
    OnlineRunResult result;
    const int rc = online_run(&o, &result, &err);
    if (rc != 0) printf("%s\n", err.msg);
    online_judge_close(&judge);
    assert_int_equal(rc, 0);
    snprintf(path, sizeof path, "%s/config.json", out);
    char *config = test_read_file(path, NULL);
    assert_non_null(config);
    assert_non_null(strstr(config, "\"preset\":\t\"reference\""));
    assert_non_null(strstr(config, "\"merge_dtype\":\t\"f16\""));
    free(config);
    /* the training ran under the preset, for one epoch of what downsampling left */
    snprintf(path, sizeof path, "%s/iter-1/train/config.json", out);
    config = test_read_file(path, NULL);
    assert_non_null(config);
    assert_non_null(strstr(config, "\"preset\":\t\"reference-online\""));
    assert_non_null(strstr(config, "\"align_p_ratio\":\t0.25"));
    assert_non_null(strstr(config, "\"cutoff\":\t511")); /* 2048, capped by the context */
    assert_non_null(strstr(config, "\"keep_error\":\ttrue"));
    assert_non_null(strstr(config, "\"weight_decay\":\t0"));
    assert_non_null(strstr(config, "\"epochs\":\t1"));
    free(config);
    /* the merged model is f16, as merge.py writes it */
    snprintf(path, sizeof path, "%s/iter-1/model/model.safetensors", out);
    char *model = test_read_file(path, NULL);
    assert_non_null(model);
    assert_non_null(strstr(model + 8, "\"dtype\":\"F16\""));
    assert_null(strstr(model + 8, "\"dtype\":\"F32\""));
    free(model);
}

static void test_failing_judge_is_reported(void **state) {
    const char *dir = *state;
    make_world(dir);
    char *log = NULL;
    CkError err = {{0}};
    assert_int_equal(align(dir, "command:echo broken >&2; exit 3", 0, &log, &err), -1);
    /* every item failed: recorded, not trained on, and the run stops saying so */
    assert_non_null(strstr(log, "judge failed on item 0"));
    assert_non_null(strstr(err.msg, "nothing was judged"));
    /* the stage is finished: a rerun could not fix it, and the message says what would */
    assert_non_null(strstr(err.msg, "a rerun will not judge them again: fix the judge, delete "
                                    "judgments.jsonl and judge_failures.jsonl there"));
    free(log);
    char path[2048];
    snprintf(path, sizeof path, "%s/run/iter-1/judge_failures.jsonl", dir);
    char *failures = test_read_file(path, NULL);
    assert_non_null(failures);
    assert_non_null(strstr(failures, "\"judge_error\":"));
    free(failures);
    /* a judge spec that is none of the three kinds */
    OnlineJudge judge;
    assert_int_equal(online_judge_open(&judge, "oracle", 1, &err), -1);
    assert_non_null(strstr(err.msg, "expected synth, file:PATH or command:CMD"));
}

/* The command: flags into options, exit codes 2 (usage), 1 (failure) and 0 with its last
 * line naming the final model. */
static void test_the_command(void **state) {
    const char *dir = *state;
    make_world(dir);
    char cmd[4096], *err = NULL;
    const char *common = "--iterations 1 --per-iteration 2 --max-tokens 16 --threads 1";
    snprintf(cmd, sizeof cmd,
             "'%s' align-online --instructions '%s/world/instructions.json' --out '%s/run' "
             "--judge oracle %s",
             CUTKIT_BINARY, dir, dir, common);
    assert_int_equal(test_run(cmd, NULL, &err), 2);
    assert_non_null(strstr(err, "cutkit align-online: --judge: judge 'oracle': expected synth"));
    free(err);
    snprintf(cmd, sizeof cmd, "'%s' align-online --out '%s/run'", CUTKIT_BINARY, dir);
    assert_int_equal(test_run(cmd, NULL, NULL), 2);
    snprintf(cmd, sizeof cmd,
             "'%s' align-online --instructions '%s/world/instructions.json' --out '%s/fail' "
             "--judge 'command:exit 3' %s",
             CUTKIT_BINARY, dir, dir, common);
    err = NULL;
    assert_int_equal(test_run(cmd, NULL, &err), 1);
    assert_non_null(strstr(err, "cutkit align-online: iteration 1: nothing was judged"));
    assert_non_null(strstr(err, "cutkit align-online: stopped; rerun the same command"));
    free(err);
    snprintf(cmd, sizeof cmd,
             "'%s' align-online --instructions '%s/world/instructions.json' --out '%s/run' %s",
             CUTKIT_BINARY, dir, dir, common);
    err = NULL;
    assert_int_equal(test_run(cmd, NULL, &err), 0);
    assert_non_null(strstr(err, "cutkit align-online: done; final model "));
    assert_non_null(strstr(err, "/run/iter-1/train/model; summary in "));
    free(err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_instruction_pool, make_temp, remove_temp),
        cmocka_unit_test_setup_teardown(test_two_iterations_with_the_synthetic_judge, make_temp,
                                        remove_temp),
        cmocka_unit_test_setup_teardown(test_generation_resumes_from_its_journal, make_temp,
                                        remove_temp),
        cmocka_unit_test_setup_teardown(test_command_judge_and_lora_merge, make_temp, remove_temp),
        cmocka_unit_test_setup_teardown(test_generations_are_utf8, make_temp, remove_temp),
        cmocka_unit_test_setup_teardown(test_judge_answers_are_validated, make_temp, remove_temp),
        cmocka_unit_test_setup_teardown(test_reference_responses, make_temp, remove_temp),
        cmocka_unit_test_setup_teardown(test_reference_loop, make_temp, remove_temp),
        cmocka_unit_test_setup_teardown(test_failing_judge_is_reported, make_temp, remove_temp),
        cmocka_unit_test_setup_teardown(test_the_command, make_temp, remove_temp),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
