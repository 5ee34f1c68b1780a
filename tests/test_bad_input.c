/* test_bad_input.c — the crafted inputs of issue 17 ("bad input that gets through"), each
 * refused with a message that names the real problem, or read correctly where it is valid:
 *  - sizes from file headers that overflowed signed arithmetic (llama2.c vocab_size INT_MIN,
 *    config.json head_dim wrapping, a forged train state's step counters and data cursor);
 *  - tokenizer files chosen by content (a BOM, empty, null, binary);
 *  - trailing content after a JSON value, in every JSON loader and in the commands' inputs;
 *  - adapters with NaN weights or a lora_alpha beyond float;
 *  - control characters from data files printed raw (messages, the win-rate table);
 *  - convert creating the parent folders of its destination.
 * The files under tests/fuzz/corpus_* (written by tests/fuzz/make_corpus.py) are the fuzzers'
 * seeds; every crafted one is replayed here with the refusal it must get. The suite runs in
 * the Release and the ASan+UBSan builds, so an overflow that returns is caught twice. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/test_util.h"

#include "datasets/corpus.h"
#include "eval/annotations.h"
#include "eval/outputs.h"
#include "eval/winrate_run.h"
#include "formats/convert.h"
#include "formats/embedded.h"
#include "formats/hf_config.h"
#include "formats/hf_model.h"
#include "formats/llama2c.h"
#include "formats/peft.h"
#include "model/lora.h"
#include "tokenizer/tokenizer.h"
#include "train/optim.h"
#include "train/train_state.h"
#include "util/fileio.h"
#include "util/json_strict.h"
#include "util/rng.h"
#include "util/strbuf.h"
#include "util/termsafe.h"

static char *tmp;
static Model base; /* the embedded stories260K, for adapters */

static int setup(void **state) {
    (void)state;
    size_t size;
    const void *data = embedded_model(&size);
    CkError err = {{0}};
    if (llama2c_load(&base, data, size, &err) != 0) return -1;
    tmp = test_temp_dir();
    return tmp ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    model_free(&base);
    int rc = test_remove_dir(tmp);
    free(tmp);
    return rc;
}

/* The path of a seed file of the fuzzers. */
static void corpus_path(char *buf, size_t cap, const char *folder, const char *name) {
    snprintf(buf, cap, "%s/tests/fuzz/%s/%s", CUTKIT_SOURCE_DIR, folder, name);
}

/* Fails unless rc is the expected outcome: `want` NULL means accepted, else a refusal whose
 * message holds want (and never the misleading "vocab_size 1 is too small"). */
static void expect_outcome(const char *what, int rc, const CkError *err, const char *want) {
    if ((want == NULL) != (rc == 0) || (want && !strstr(err->msg, want)))
        fprintf(stderr, "%s:\n  want %s\n  got  %s\n", what, want ? want : "(accepted)",
                rc == 0 ? "(accepted)" : err->msg);
    if (!want) {
        assert_int_equal(rc, 0);
        return;
    }
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err->msg, want));
    assert_null(strstr(err->msg, "is too small"));
}

/* Reads and parses a JSON file (the test's own reads may be lenient). */
static cJSON *json_file(const char *path) {
    char *text = test_read_file(path, NULL);
    assert_non_null(text);
    cJSON *v = cJSON_Parse(text);
    free(text);
    assert_non_null(v);
    return v;
}

/* Writes text to tmp/name and returns the path (static buffer). */
static const char *write_tmp(const char *name, const char *text) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    assert_int_equal(test_write_file(path, text, strlen(text)), 0);
    return path;
}

/* ---- 1. sizes from headers, checked in 64 bits ---------------------------------------------- */

static void test_llama2c_headers(void **state) {
    (void)state;
    static const struct {
        const char *file, *want;
    } CASES[] = {
        {"valid_v0.bin", NULL},
        {"valid_v0_unshared.bin", NULL},
        {"valid_v1.bin", NULL},
        {"valid_v2.bin", NULL},
        /* UBSan: -INT_MIN when reading the "classifier not shared" sign */
        {"vocab_int_min.bin", "vocab_size -2147483648 is out of range"},
        {"group_int_min.bin", "version-2 group size -2147483648 is not positive"},
        {"huge_dims.bin", "implies"},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        char path[1024];
        corpus_path(path, sizeof path, "corpus_llama2c", CASES[i].file);
        Model m;
        CkError err = {{0}};
        int rc = llama2c_load_file(&m, path, &err);
        expect_outcome(CASES[i].file, rc, &err, CASES[i].want);
        if (rc == 0) {
            assert_int_equal(m.config.vocab_size, 4);
            assert_int_equal(m.config.dim, 8);
        }
        model_free(&m);
    }
}

static void test_hf_config_files(void **state) {
    (void)state;
    static const struct {
        const char *file, *want;
    } CASES[] = {
        {"valid.json", NULL},
        {"bom.json", NULL}, /* a byte-order mark before the object is valid input */
        /* 536870920 * 8 wrapped to 64 in int and passed the documented check */
        {"head_dim_wraps.json", "unsupported option \"head_dim\" (536870920"},
        {"trailing_object.json", "content after the JSON value at byte 303 (line 2)"},
        {"trailing_garbage.json", "content after the JSON value at byte 303 (line 1)"},
        {"bos_1e50.json", "field \"bos_token_id\" must be a token id"},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        char path[1024];
        corpus_path(path, sizeof path, "corpus_hf_config", CASES[i].file);
        HfConfig c;
        CkError err = {{0}};
        int rc = hf_config_load(&c, path, &err);
        expect_outcome(CASES[i].file, rc, &err, CASES[i].want);
        if (rc == 0) assert_int_equal(c.model.dim, 64);
    }
}

/* A train state forged with a valid checksum: counters near INT64_MAX overflowed AdamW's step
 * (optim.c) and the data cursor's epoch (corpus.c) on the first update after resuming. */
static void test_train_state_counters(void **state) {
    (void)state;
    static const struct {
        const char *file, *want;
    } CASES[] = {
        {"valid.state", NULL},
        {"opt_step_max.state", "optimizer step 9223372036854775807 is beyond 2^53"},
        {"step_max.state", "step 9223372036854775807 is beyond 2^53"},
        {"total_steps_max.state", "total steps 9223372036854775807 is beyond 2^53"},
        {"cursor_epoch_max.state", NULL}, /* the cursor is the trainer's: refused below */
        {"bad_checksum.state", "checksum"},
    };
    const TrainLayout layout = {0x6375746B69742121ull, 8, "fuzz layout"};
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        char path[1024];
        corpus_path(path, sizeof path, "corpus_train_state", CASES[i].file);
        AdamW opt;
        AdamWConfig cfg = adamw_config_default();
        CkError err = {{0}};
        assert_int_equal(adamw_init(&opt, 8, &cfg, &err), 0);
        TrainState ts;
        memset(&ts, 0, sizeof ts);
        int rc = train_state_load(path, &ts, &layout, &opt, &err);
        expect_outcome(CASES[i].file, rc, &err, CASES[i].want);
        if (rc == 0) {
            /* what a resumed trainer does next: the data cursor, then an update */
            CorpusCursor cur;
            rc = corpus_cursor_init(&cur, 4, 7, ts.cursor[0], ts.cursor[1], &err);
            corpus_cursor_free(&cur);
            if (ts.cursor[0] == INT64_MAX) {
                expect_outcome("the cursor's epoch", rc, &err, "data cursor (epoch");
            } else {
                assert_int_equal(rc, 0);
                float params[8] = {0}, grads[8] = {1, 1, 1, 1, 1, 1, 1, 1};
                assert_int_equal(adamw_step(&opt, params, grads, 1e-3, &err), 0);
            }
        }
        adamw_free(&opt);
    }
}

static void test_counters_in_memory(void **state) {
    (void)state;
    AdamW opt;
    AdamWConfig cfg = adamw_config_default();
    CkError err = {{0}};
    assert_int_equal(adamw_init(&opt, 4, &cfg, &err), 0);
    opt.step = INT64_MAX;
    float params[4] = {0}, grads[4] = {1, 1, 1, 1};
    expect_outcome("adamw_step at INT64_MAX", adamw_step(&opt, params, grads, 1e-3, &err), &err,
                   "AdamW: step counter");
    adamw_free(&opt);
    CorpusCursor cur;
    expect_outcome("cursor at INT64_MAX", corpus_cursor_init(&cur, 3, 1, INT64_MAX, 0, &err), &err,
                   "data cursor (epoch 9223372036854775807");
    corpus_cursor_free(&cur);
}

/* ---- 2. tokenizer files chosen by content --------------------------------------------------- */

static void test_tokenizer_by_content(void **state) {
    (void)state;
    static const struct {
        const char *file, *want;
        int kind;
    } CASES[] = {
        {"small.json", NULL, TOKENIZER_HF_BPE},
        {"bom.json", NULL, TOKENIZER_HF_BPE},
        {"empty.json", "empty file: neither a tokenizer.json nor a llama2.c tokenizer.bin", 0},
        {"null.json", "expected a JSON object at the top level, found null", 0},
        {"array.json", "expected a JSON object at the top level, found an array", 0},
        {"binary.json",
         "neither a tokenizer.json (not UTF-8 text: byte 0 is 0x80) nor a llama2.c "
         "tokenizer.bin",
         0},
        {"trailing.json", "not valid JSON (at byte 1269)", 0},
        {"small.bin", NULL, TOKENIZER_LLAMA2C},
        {"one_record.bin",
         "a llama2.c tokenizer.bin with 1 record; it needs at least 3 (<unk>, BOS, EOS)", 0},
        {"cut_record.bin", "record 6: length 6 runs past the end of the data", 0},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        char path[1024];
        corpus_path(path, sizeof path, "corpus_tokenizer", CASES[i].file);
        Tokenizer t;
        CkError err = {{0}};
        int rc = tokenizer_open(&t, path, &err);
        expect_outcome(CASES[i].file, rc, &err, CASES[i].want);
        if (rc == 0) {
            assert_int_equal(t.kind, CASES[i].kind);
            int *ids = NULL, n = 0;
            assert_int_equal(tokenizer_encode(&t, "a cat", 1, 0, &ids, &n, &err), 0);
            assert_true(n >= 2);
            free(ids);
        } else {
            assert_non_null(strstr(err.msg, CASES[i].file)); /* the message names the file */
        }
        tokenizer_free(&t);
    }
}

/* ---- 3. one JSON value per file ------------------------------------------------------------- */

static void test_trailing_content(void **state) {
    (void)state;
    CkError err = {{0}};
    AnnotationSet s;
    ModelOutputs o;
    char path[1024];
    corpus_path(path, sizeof path, "corpus_alpaca_eval", "annotations.json");
    expect_outcome("annotations.json", annotations_load(&s, path, &err), &err, NULL);
    assert_int_equal(s.n, 3);
    annotations_free(&s);
    corpus_path(path, sizeof path, "corpus_alpaca_eval", "annotations_trailing.json");
    expect_outcome("annotations_trailing.json", annotations_load(&s, path, &err), &err,
                   "content after the JSON value at byte 414 (line 1)");
    corpus_path(path, sizeof path, "corpus_alpaca_eval", "outputs.json");
    expect_outcome("outputs.json", outputs_load(&o, path, 0, &err), &err, NULL);
    assert_int_equal(o.n, 3);
    outputs_free(&o);
    corpus_path(path, sizeof path, "corpus_alpaca_eval", "outputs_trailing.json");
    expect_outcome("outputs_trailing.json", outputs_load(&o, path, 0, &err), &err,
                   "content after the JSON value at byte 169 (line 2)");

    /* training JSON Lines: a line holds one object */
    Tokenizer tok;
    assert_int_equal(embedded_tokenizer_load(&tok, &err), 0);
    static const struct {
        const char *file, *want;
    } LINES[] = {
        {"valid.jsonl", NULL},
        {"text.txt", NULL},
        {"trailing.jsonl", "trailing.jsonl:2: content after the JSON value at column 15"},
        {"not_object.jsonl", "not_object.jsonl:2: expected a JSON object"},
    };
    for (size_t i = 0; i < sizeof LINES / sizeof LINES[0]; i++) {
        corpus_path(path, sizeof path, "corpus_jsonl", LINES[i].file);
        Corpus c;
        expect_outcome(LINES[i].file, corpus_load(&c, path, &tok, 16, &err), &err, LINES[i].want);
        corpus_free(&c);
    }
    tokenizer_free(&tok);
}

/* The adapter_config.json seeds, each as the config of an adapter folder without weights: the
 * config is refused before the weights are looked for, or the weights are missing. */
static void test_adapter_configs(void **state) {
    (void)state;
    static const struct {
        const char *file, *want;
    } CASES[] = {
        {"valid.json", "adapter_model.safetensors: cannot open"},
        {"alpha_1e39.json", "field \"lora_alpha\" must be a positive number in float range"},
        {"alpha_1e308.json", "field \"lora_alpha\" must be a positive number in float range"},
        {"dropout_1e39.json", "field \"lora_dropout\" must be a number in [0, 1)"},
        {"rank_fraction.json", "field \"r\" must be a positive integer"},
        {"rank_1e10.json", "field \"r\" must be a positive integer"},
        {"trailing.json", "content after the JSON value at byte 271 (line 1)"},
        {"targets_empty.json", "field \"target_modules\" names no module"},
    };
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/adapter-configs", tmp);
    CkError err = {{0}};
    assert_int_equal(fileio_make_dirs(dir, &err), 0);
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        char path[1024], dst[1100];
        corpus_path(path, sizeof path, "corpus_peft_config", CASES[i].file);
        size_t size;
        char *text = test_read_file(path, &size);
        assert_non_null(text);
        snprintf(dst, sizeof dst, "%s/adapter_config.json", dir);
        assert_int_equal(test_write_file(dst, text, size), 0);
        free(text);
        LoraAdapters ad;
        expect_outcome(CASES[i].file, peft_load(&ad, &base, dir, &err), &err, CASES[i].want);
    }
}

/* ---- 4. adapters: non-finite weights and scales --------------------------------------------- */

/* Saves a small adapter on the embedded model into tmp/name; poison >= 0 puts a NaN at that
 * float of the buffer. */
static void save_adapter(const char *folder, long poison) {
    LoraConfig c = {4, 8.0f, 0.0f, LORA_BIT(LORA_Q) | LORA_BIT(LORA_V)};
    LoraAdapters ad;
    CkError err = {{0}};
    assert_int_equal(lora_init(&ad, &base, &c, 3, &err), 0);
    if (poison >= 0) ad.params[poison] = NAN;
    assert_int_equal(peft_save(&ad, &base, folder, "stories260K", NULL, &err), 0);
    lora_free(&ad);
}

static void test_adapter_values(void **state) {
    (void)state;
    char folder[1024];
    CkError err = {{0}};
    LoraAdapters ad;
    snprintf(folder, sizeof folder, "%s/adapter-ok", tmp);
    save_adapter(folder, -1);
    expect_outcome("a valid adapter", peft_load(&ad, &base, folder, &err), &err, NULL);
    lora_free(&ad);

    /* a NaN in layer 1's v_proj A: the message names the tensor and the element */
    snprintf(folder, sizeof folder, "%s/adapter-nan", tmp);
    LoraConfig c = {4, 8.0f, 0.0f, LORA_BIT(LORA_Q) | LORA_BIT(LORA_V)};
    assert_int_equal(lora_init(&ad, &base, &c, 3, &err), 0);
    const LoraTensor *t =
        lora_find(&ad, "base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight");
    assert_non_null(t);
    long at = (long)(t->offset + 5);
    lora_free(&ad);
    save_adapter(folder, at);
    expect_outcome("an adapter with a NaN weight", peft_load(&ad, &base, folder, &err), &err,
                   "tensor base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight holds "
                   "nan at element 5");

    /* lora_alpha 1e39 is infinite as a float: every score was null, with exit 0 */
    snprintf(folder, sizeof folder, "%s/adapter-alpha", tmp);
    save_adapter(folder, -1);
    char path[1100];
    snprintf(path, sizeof path, "%s/adapter_config.json", folder);
    cJSON *cfg = json_file(path);
    cJSON_ReplaceItemInObjectCaseSensitive(cfg, "lora_alpha", cJSON_CreateNumber(1e39));
    char *text = cJSON_Print(cfg);
    assert_int_equal(test_write_file(path, text, strlen(text)), 0);
    free(text);
    cJSON_Delete(cfg);
    expect_outcome("lora_alpha 1e39", peft_load(&ad, &base, folder, &err), &err,
                   "field \"lora_alpha\" must be a positive number in float range");

    /* the library's own check, for adapters made in code */
    LoraConfig inf = {4, INFINITY, 0.0f, LORA_BIT(LORA_Q)};
    expect_outcome("lora_init with an infinite alpha", lora_init(&ad, &base, &inf, 1, &err), &err,
                   "lora_alpha must be positive and finite");
}

/* ---- 5. what reaches the terminal ----------------------------------------------------------- */

/* Fails when text holds a control character other than newline and tab. */
static void assert_printable(const char *what, const char *text) {
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f) {
            fprintf(stderr, "%s: raw control byte 0x%02x at %zu in:\n%s\n", what, *p,
                    (size_t)(p - (const unsigned char *)text), text);
            fail();
        }
}

static void test_winrate_output_escaped(void **state) {
    (void)state;
    char path[1024];
    corpus_path(path, sizeof path, "corpus_alpaca_eval", "annotations_escapes.json");
    const char *files[] = {path};
    const WinrateFormat formats[] = {WINRATE_FORMAT_TABLE, WINRATE_FORMAT_MARKDOWN,
                                     WINRATE_FORMAT_CSV, WINRATE_FORMAT_JSON};
    for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++) {
        WinrateRunOptions o;
        winrate_run_options_init(&o);
        o.files = files;
        o.n_files = 1;
        o.format = formats[k];
        char out_path[1024];
        snprintf(out_path, sizeof out_path, "%s/winrate-%zu.txt", tmp, k);
        o.out = fopen(out_path, "w");
        assert_non_null(o.out);
        CkError err = {{0}};
        assert_int_equal(winrate_run(&o, NULL, &err), 0);
        fclose(o.out);
        char *text = test_read_file(out_path, NULL);
        assert_non_null(text);
        assert_printable("win-rate table", text);
        if (formats[k] == WINRATE_FORMAT_JSON) {
            /* valid JSON that gives the name back exactly */
            cJSON *row = cJSON_Parse(text);
            const cJSON *model = cJSON_GetObjectItemCaseSensitive(row, "model");
            assert_true(cJSON_IsString(model));
            assert_string_equal(model->valuestring, "evil\x1b]0;owned\x07\x1b[31mred\xe2\x80\xae");
            cJSON_Delete(row);
        } else {
            assert_non_null(strstr(text, "evil\\x1b]0;owned\\x07\\x1b[31mred\\u202e"));
        }
        free(text);
    }
}

/* Runs the binary; returns its exit status with stderr in *err (malloc'd). */
static int run_cutkit(const char *args, const char *input, char **out, char **err) {
    char cmd[4096];
    if (input)
        snprintf(cmd, sizeof cmd, "printf '%%s' '%s' | '%s' %s", input, CUTKIT_BINARY, args);
    else
        snprintf(cmd, sizeof cmd, "'%s' %s < /dev/null", CUTKIT_BINARY, args);
    return test_run(cmd, out, err);
}

static void test_messages_escaped(void **state) {
    (void)state;
    /* a model path holding an escape sequence: the message quotes it escaped */
    char args[1024], *out = NULL, *err = NULL;
    snprintf(args, sizeof args, "generate --steps 1 --model '%s/no\x1b[31mmodel\x07.bin'", tmp);
    int status = run_cutkit(args, NULL, &out, &err);
    assert_int_equal(status, 1);
    assert_printable("stderr", err);
    assert_non_null(strstr(err, "no\\x1b[31mmodel\\x07.bin"));
    assert_true(strchr(err, '\n') == err + strlen(err) - 1); /* one line */
    free(out);
    free(err);
}

/* generate on a terminal escapes the control bytes of its text (the prompt's here); piped, it
 * writes them as they are. util-linux's script(1) gives it a terminal. */
static void test_generate_on_a_terminal(void **state) {
    (void)state;
    char cmd[2048], *out = NULL, *err = NULL;
    /* piped: the prompt's ESC is written as it is */
    snprintf(cmd, sizeof cmd, "'%s' generate --steps 1 --prompt \"$(printf 'a\\033[31mb')\"",
             CUTKIT_BINARY);
    assert_int_equal(test_run(cmd, &out, &err), 0);
    assert_non_null(strstr(out, "a\x1b[31mb"));
    free(out);
    free(err);
    if (test_run("command -v script > /dev/null", NULL, NULL) != 0) {
        test_missing_reference("script(1), to give cutkit generate a terminal");
        skip();
    }
    /* on a terminal: escaped (script turns newlines into \r\n, so only ESC is looked for) */
    snprintf(cmd, sizeof cmd,
             "script -qec \"'%s' generate --steps 1 --prompt \\\"\\$(printf 'a\\\\033[31mb')\\\"\" "
             "/dev/null",
             CUTKIT_BINARY);
    assert_int_equal(test_run(cmd, &out, &err), 0);
    assert_null(strchr(out, '\x1b'));
    assert_non_null(strstr(out, "a\\x1b[31mb"));
    free(out);
    free(err);
}

static void test_commands_refuse_trailing_content(void **state) {
    (void)state;
    char args[2048], *out = NULL, *err = NULL;
    /* --settings: one JSON object */
    const char *settings = write_tmp("settings.json", "{\"steps\": 1}\n{\"steps\": 2}\n");
    snprintf(args, sizeof args, "generate --settings '%s'", settings);
    int status = run_cutkit(args, NULL, &out, &err);
    if (status != 2) fprintf(stderr, "stderr was: %s\n", err);
    assert_int_equal(status, 2);
    assert_non_null(strstr(err, "settings.json: content after the JSON value at byte 13 (line 2)"));
    free(out);
    free(err);
    /* score: one object per line of stdin */
    status = run_cutkit("score", "{\"text\": \"a\"} {\"text\": \"b\"}\n", &out, &err);
    if (status != 1) fprintf(stderr, "stderr was: %s\n", err);
    assert_int_equal(status, 1);
    assert_non_null(strstr(err, "stdin:1: content after the JSON value at column 15"));
    free(out);
    free(err);
    /* tokenize likewise */
    status = run_cutkit("tokenize", "{\"text\": \"a\"} {\"text\": \"b\"}\n", &out, &err);
    if (status != 1) fprintf(stderr, "stderr was: %s\n", err);
    assert_int_equal(status, 1);
    assert_non_null(strstr(err, "stdin line 1: content after the JSON value at column 15"));
    free(out);
    free(err);
}

/* A sharded Hugging Face folder whose index has a second object after the first. */
static void test_shard_index_trailing(void **state) {
    (void)state;
    char folder[1024], path[1100];
    snprintf(folder, sizeof folder, "%s/hf-index", tmp);
    HfConfig cfg = {.model = base.config, .bos_token_id = 1, .eos_token_id = 2};
    CkError err = {{0}};
    assert_int_equal(hf_model_save(&base, &cfg, folder, ST_F32, NULL, &err), 0);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", folder);
    const char *index = "{\"weight_map\": {}}\n{\"weight_map\": {}}\n";
    assert_int_equal(test_write_file(path, index, strlen(index)), 0);
    Model m;
    HfConfig got;
    expect_outcome("index.json with trailing content", hf_model_load(&m, &got, folder, &err), &err,
                   "model.safetensors.index.json: content after the JSON value at byte 19");
}

/* ---- 6. convert makes the destination's folders --------------------------------------------- */

static void test_convert_makes_parents(void **state) {
    (void)state;
    char to[1024];
    const char *dests[] = {"fresh/a/model.bin", "fresh/b/hf"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(to, sizeof to, "%s/%s", tmp, dests[i]);
        ConvertOptions o;
        convert_options_init(&o);
        o.to = to;
        ConvertResult r;
        CkError err = {{0}};
        expect_outcome(dests[i], convert_model(&o, &r, &err), &err, NULL);
        assert_true(r.model_written);
        struct stat st;
        assert_int_equal(stat(to, &st), 0);
    }
}

/* ---- the two utilities ----------------------------------------------------------------------- */

static void expect_escaped(const char *in, size_t n, TermsafeLines lines, const char *want) {
    StrBuf b = {0};
    assert_int_equal(termsafe_put(&b, in, n, lines), 0);
    assert_string_equal(b.p ? b.p : "", want);
    assert_int_equal(termsafe_is_clean(in, n, lines), strcmp(in, want) == 0 && strlen(in) == n);
    strbuf_free(&b);
}

static void test_termsafe(void **state) {
    (void)state;
    expect_escaped("plain caf\xc3\xa9\ttab", 15, TERMSAFE_ONE_LINE, "plain caf\xc3\xa9\ttab");
    expect_escaped("a\x1b[31mb\x07", 8, TERMSAFE_ONE_LINE, "a\\x1b[31mb\\x07");
    expect_escaped("two\nlines\r", 10, TERMSAFE_ONE_LINE, "two\\nlines\\r");
    expect_escaped("two\nlines\r", 10, TERMSAFE_MULTI_LINE, "two\nlines\\r");
    expect_escaped("nul\0del\x7f", 8, TERMSAFE_MULTI_LINE, "nul\\x00del\\x7f");
    /* C1 CSI as UTF-8, a right-to-left override, a lone byte and a cut-off character */
    expect_escaped("\xc2\x9b"
                   "1m\xe2\x80\xae!\xff\xe2\x80",
                   11, TERMSAFE_ONE_LINE, "\\u009b1m\\u202e!\\xff\\xe2\\x80");
    StrBuf b = {0};
    const char in[] = "q\"\\\t\n\x1b\xff\xe2\x80\xae\xc3\xa9";
    assert_int_equal(termsafe_put_json(&b, in, sizeof in - 1), 0);
    assert_string_equal(b.p, "q\\\"\\\\\\t\\n\\u001b\\ufffd\\u202e\xc3\xa9");
    /* what it writes is JSON, and reads back as the text (the ill-formed byte as U+FFFD) */
    char *quoted = malloc(b.n + 3);
    assert_non_null(quoted);
    snprintf(quoted, b.n + 3, "\"%s\"", b.p);
    cJSON *v = cJSON_Parse(quoted);
    assert_true(cJSON_IsString(v));
    assert_string_equal(v->valuestring, "q\"\\\t\n\x1b\xef\xbf\xbd\xe2\x80\xae\xc3\xa9");
    cJSON_Delete(v);
    free(quoted);
    strbuf_free(&b);
}

/* A string literal and its length, NULs inside counted. */
#define TEXT(literal) literal, sizeof literal - 1

static void test_json_strict(void **state) {
    (void)state;
    static const struct {
        const char *text;
        size_t len;
        const char *want; /* NULL: accepted */
    } CASES[] = {
        {TEXT("{\"a\": 1}"), NULL},
        {TEXT(" [1, 2] \r\n\t "), NULL},
        {TEXT("\xef\xbb\xbf{}"), NULL},
        {TEXT("null"), NULL},
        {TEXT(""), "f: not valid JSON near byte 0 (line 1)"},
        {TEXT("\xef\xbb\xbf"), "f: not valid JSON near byte 3 (line 1)"},
        {TEXT("\xef\xbb\xbf\xef\xbb\xbf{}"), "f: not valid JSON near byte 3 (line 1)"},
        {TEXT("{}{}"), "f: content after the JSON value at byte 2 (line 1)"},
        {TEXT("{}\n\n[1]"), "f: content after the JSON value at byte 4 (line 3)"},
        {TEXT("1 2"), "f: content after the JSON value at byte 2 (line 1)"},
        {TEXT("{}\0"), "f: content after the JSON value at byte 2 (line 1)"},
        {TEXT("{}\x01"), "f: content after the JSON value at byte 2 (line 1)"},
        {TEXT("{\n\"a\": }"), "f: not valid JSON near byte 7 (line 2)"},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        CkError err = {{0}};
        cJSON *v = json_parse_strict(CASES[i].text, CASES[i].len, "f", &err);
        if (CASES[i].want) {
            if (v || strcmp(err.msg, CASES[i].want) != 0)
                fprintf(stderr, "case %zu: want %s, got %s\n", i, CASES[i].want,
                        v ? "(accepted)" : err.msg);
            assert_null(v);
            assert_string_equal(err.msg, CASES[i].want);
        } else {
            assert_non_null(v);
        }
        cJSON_Delete(v);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama2c_headers),
        cmocka_unit_test(test_hf_config_files),
        cmocka_unit_test(test_train_state_counters),
        cmocka_unit_test(test_counters_in_memory),
        cmocka_unit_test(test_tokenizer_by_content),
        cmocka_unit_test(test_trailing_content),
        cmocka_unit_test(test_adapter_configs),
        cmocka_unit_test(test_adapter_values),
        cmocka_unit_test(test_winrate_output_escaped),
        cmocka_unit_test(test_messages_escaped),
        cmocka_unit_test(test_generate_on_a_terminal),
        cmocka_unit_test(test_commands_refuse_trailing_content),
        cmocka_unit_test(test_shard_index_trailing),
        cmocka_unit_test(test_convert_makes_parents),
        cmocka_unit_test(test_termsafe),
        cmocka_unit_test(test_json_strict),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
