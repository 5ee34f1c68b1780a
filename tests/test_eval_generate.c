/* test_eval_generate.c — the generation pipeline (generate_run) on the embedded model: a valid
 * model_outputs.json, greedy responses equal to `cutkit generate` on the same prompt,
 * determinism by seed, resuming after a partial file gives the uninterrupted run's bytes,
 * stop strings, UTF-8 repair, the AlpacaEval instructions of the shared data, the same bytes
 * at any --batch; an adapter beside a model held in bf16 answers as it does merged into the
 * same weights in fp32; and the `cutkit eval generate` binary's flags and exit codes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include "datasets/templates.h"
#include "eval/generate_run.h"
#include "eval/outputs.h"
#include "eval/respond.h"
#include "formats/lm.h"
#include "formats/peft.h"
#include "model/lora.h"
#include "util/rng.h"

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

/* The two paths of a run, kept alive while its options point at them. */
typedef struct {
    char ins[700], out[700];
} Paths;

/* Options for dir/ins.json -> dir/out with max_tokens tokens; the caller sets the rest. */
static GenerateRunOptions options(const char *out, int max_tokens, Paths *p) {
    GenerateRunOptions o;
    generate_run_options_init(&o);
    snprintf(p->ins, sizeof p->ins, "%s/ins.json", dir);
    snprintf(p->out, sizeof p->out, "%s/%s", dir, out);
    o.instructions = p->ins;
    o.out = p->out;
    o.max_tokens = max_tokens;
    return o;
}

/* Runs generate_run; *log (when non-NULL) receives what it logged (malloc'd). */
static int run(const GenerateRunOptions *o, char **log, CkError *err) {
    GenerateRunOptions copy = *o;
    char *text = NULL;
    size_t len = 0;
    copy.log = log ? open_memstream(&text, &len) : NULL;
    GenerateRunReport report;
    int rc = generate_run(&copy, &report, err);
    if (log) {
        fclose(copy.log);
        *log = text;
    }
    return rc;
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
    Paths paths;
    GenerateRunOptions opt = options("greedy.json", 40, &paths);
    CkError err = {{0}};
    assert_int_equal(run(&opt, NULL, &err), 0);
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
    const char *stops[2] = {stop, "zzzz"};
    opt = options("stop.json", 40, &paths);
    opt.limit = 1;
    opt.stops = stops;
    opt.n_stops = 2;
    assert_int_equal(run(&opt, NULL, &err), 0);
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
    Paths pa, pb, pc;
    GenerateRunOptions a = options("a.json", 30, &pa);
    a.temperature = 0.9f;
    a.seed = 5;
    GenerateRunOptions b = options("b.json", 30, &pb);
    b.temperature = 0.9f;
    b.seed = 5;
    b.save_every = 1;
    GenerateRunOptions c = options("c.json", 30, &pc);
    c.temperature = 0.9f;
    c.seed = 6;
    CkError err = {{0}};
    assert_int_equal(run(&a, NULL, &err), 0);
    assert_int_equal(run(&b, NULL, &err), 0);
    assert_int_equal(run(&c, NULL, &err), 0);
    char *ta = slurp("a.json"), *tb = slurp("b.json"), *tc = slurp("c.json");
    assert_string_equal(ta, tb); /* deterministic by seed */
    assert_string_not_equal(ta, tc);
    free(tb);
    free(tc);
    /* a partial file (the first two records, as an interrupted run leaves it) resumes to the
     * uninterrupted run's bytes */
    ModelOutputs full = load("a.json");
    for (int i = 2; i < full.n; i++) {
        free(full.items[i].instruction), free(full.items[i].output);
        free(full.items[i].generator), free(full.items[i].dataset);
    }
    full.n = 2;
    Paths pp;
    GenerateRunOptions p = options("partial.json", 30, &pp);
    p.temperature = 0.9f;
    p.seed = 5;
    assert_int_equal(outputs_save(&full, p.out, &err), 0);
    outputs_free(&full);
    char *log = NULL;
    assert_int_equal(run(&p, &log, &err), 0);
    assert_non_null(strstr(log, "resuming after 2 of 4"));
    free(log);
    char *resumed = slurp("partial.json");
    assert_string_equal(resumed, ta);
    free(resumed);
    free(ta);
    /* a file of other instructions is refused, not extended */
    const char *other =
        "[{\"instruction\": \"x\", \"output\": \"y\", \"generator\": \"stories260K\"}]";
    assert_int_equal(test_write_file(p.out, other, strlen(other)), 0);
    assert_int_equal(run(&p, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "record 0 is not instruction 0"));
    /* ... and one by another generator */
    p.generator = "other";
    assert_int_equal(test_write_file(p.out, "[]", 2), 0);
    assert_int_equal(run(&p, NULL, &err), 0);
    p.generator = "another";
    assert_int_equal(run(&p, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "record 0 was made by generator 'other', not 'another'"));
}

/* Batched decoding changes nothing in the file: the same bytes at batch 1, 3 and 16, sampled
 * and greedy, with a stop string (a response that ends early frees its slot mid-batch). */
static void test_batch_independent(void **state) {
    (void)state;
    const char *stops[1] = {"."};
    char *first = NULL;
    for (int k = 0; k < 6; k++) {
        const int batches[3] = {1, 3, 16};
        char name[32];
        snprintf(name, sizeof name, "batch%d.json", k);
        Paths pa;
        GenerateRunOptions a = options(name, 30, &pa);
        a.temperature = k < 3 ? 0.9f : 0.0f;
        a.seed = 5;
        a.batch = batches[k % 3];
        a.save_every = 2;
        a.stops = stops;
        a.n_stops = 1;
        CkError err = {{0}};
        assert_int_equal(run(&a, NULL, &err), 0);
        char *t = slurp(name);
        if (k % 3 == 0) {
            free(first);
            first = t;
            continue;
        }
        assert_string_equal(t, first);
        free(t);
    }
    free(first);
}

/* Stop-string arguments, default generator names and the UTF-8 repair of responses. */
static void test_helpers(void **state) {
    (void)state;
    char **stops = NULL;
    int n = 0;
    CkError err = {{0}};
    assert_int_equal(generate_stops_parse("###", &stops, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(stops[0], "###");
    generate_stops_free(stops, n);
    assert_int_equal(generate_stops_parse("[\"a\", \"\\n\"]", &stops, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(stops[1], "\n");
    generate_stops_free(stops, n);
    assert_int_equal(generate_stops_parse("[1]", &stops, &n, &err), -1);
    assert_null(stops);
    char name[64];
    generate_run_default_name("runs/a/model.bin", name, sizeof name);
    assert_string_equal(name, "model");
    generate_run_default_name("runs/merged/", name, sizeof name);
    assert_string_equal(name, "merged");
    generate_run_default_name(NULL, name, sizeof name);
    assert_string_equal(name, "stories260K");
    /* one U+FFFD per bad byte (a character cut short is two here), NUL included */
    char *c = respond_utf8_clean("a\xE2\x82\0b\xC3\xA9\xED\xA0\x80", 10);
    assert_string_equal(c, "a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                           "b\xC3\xA9\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    free(c);
}

/* The AlpacaEval instructions as the shared data holds them (the v2 reference's file). */
static void test_alpaca_eval_instructions(void **state) {
    (void)state;
    char *ref = test_shared_path("data/alpaca_eval/results/gpt4_1106_preview/model_outputs.json");
    if (!ref) skip();
    Paths paths;
    GenerateRunOptions opt = options("ae.json", 16, &paths);
    opt.instructions = ref;
    opt.limit = 3;
    opt.generator = "tiny";
    CkError err = {{0}};
    assert_int_equal(run(&opt, NULL, &err), 0);
    ModelOutputs o = load("ae.json"), r;
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

/* The binary: a run with a JSON stop list, its closing line; required flags and a bad --stop
 * are usage errors (2), a failure while running is 1. */
static void test_cli(void **state) {
    (void)state;
    char *errout = NULL;
    assert_int_equal(cutkit("eval generate --instructions ins.json --out cli.json --limit 2 "
                            "--max-tokens 8 --stop '[\"zzz\"]' --generator g",
                            NULL, &errout),
                     0);
    assert_non_null(strstr(errout, "cli.json: 2 responses by g"));
    free(errout);
    assert_int_equal(cutkit("eval generate --out x.json", NULL, &errout), 2);
    assert_non_null(strstr(errout, "--instructions is required"));
    free(errout);
    assert_int_equal(
        cutkit("eval generate --instructions ins.json --out x.json --stop '[1]'", NULL, &errout),
        2);
    assert_non_null(strstr(errout, "cutkit eval generate: --stop: expected a string or a JSON"));
    free(errout);
    assert_int_equal(
        cutkit("eval generate --instructions missing.json --out x.json", NULL, &errout), 1);
    assert_non_null(strstr(errout, "cutkit eval generate: "));
    assert_non_null(strstr(errout, "missing.json"));
    free(errout);
}

/* --adapter with --base-dtype bf16: a held model cannot take a merge, so the adapter stays
 * beside it and is added at every product of batched decoding. The same adapter merged into
 * the same (bf16-valued) weights held in fp32 must give the same responses, and the adapter
 * must change them (it is not silently dropped). */
static void test_adapter_on_held_model(void **state) {
    (void)state;
    assert_int_equal(cutkit("convert --to held_bf16 --dtype bf16", NULL, NULL), 0);
    LanguageModel lm;
    LoraAdapters ad;
    CkError err = {{0}};
    assert_int_equal(lm_open(&lm, NULL, NULL, &err), 0);
    LoraConfig c = {4, 8.0f, 0.0f, 0};
    assert_int_equal(lora_parse_targets("all", &c.target_mask, &err), 0);
    assert_int_equal(lora_init(&ad, &lm.model, &c, 5, &err), 0);
    Rng r; /* B is zero after PEFT's init: values, so that the adapter changes the model */
    rng_seed(&r, 77);
    for (int i = 0; i < ad.n_tensors; i++)
        if (ad.tensors[i].is_b)
            for (size_t j = 0; j < ad.tensors[i].size; j++)
                ad.params[ad.tensors[i].offset + j] = 0.3f * (rng_float(&r) - 0.5f);
    char adapter[700], model[700];
    snprintf(adapter, sizeof adapter, "%s/adapter", dir);
    snprintf(model, sizeof model, "%s/held_bf16", dir);
    assert_int_equal(peft_save(&ad, &lm.model, adapter, "cutkit/stories260K", NULL, &err), 0);
    lora_free(&ad);
    lm_close(&lm);
    const char *names[3] = {"adapter_merged.json", "adapter_beside.json", "adapter_none.json"};
    for (int k = 0; k < 3; k++) {
        Paths paths;
        GenerateRunOptions o = options(names[k], 24, &paths);
        o.model = model;
        o.adapter = k < 2 ? adapter : NULL;
        o.base_dtype = k == 0 ? WEIGHT_F32 : WEIGHT_BF16;
        o.generator = "g";
        const int rc = run(&o, NULL, &err);
        if (rc != 0) fprintf(stderr, "%s: %s\n", names[k], err.msg);
        assert_int_equal(rc, 0);
    }
    ModelOutputs merged = load(names[0]), beside = load(names[1]), none = load(names[2]);
    assert_int_equal(merged.n, 4);
    assert_int_equal(beside.n, 4);
    int changed = 0;
    for (int i = 0; i < 4; i++) {
        assert_string_equal(beside.items[i].output, merged.items[i].output);
        changed += strcmp(beside.items[i].output, none.items[i].output) != 0;
    }
    assert_true(changed > 0);
    outputs_free(&merged);
    outputs_free(&beside);
    outputs_free(&none);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_seed_and_resume),
        cmocka_unit_test(test_helpers),
        cmocka_unit_test(test_alpaca_eval_instructions),
        cmocka_unit_test(test_batch_independent),
        cmocka_unit_test(test_adapter_on_held_model),
        cmocka_unit_test(test_cli),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
