/* test_hf_config.c — config.json: the Llama fields, defaults, and every refused option. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include "formats/hf_config.h"

/* TinyLlama-1.1B-Chat-v1.0's config.json, as published. */
static const char *TINYLLAMA =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"attention_bias\": false, \"bos_token_id\": 1,"
    " \"eos_token_id\": 2, \"hidden_act\": \"silu\", \"hidden_size\": 2048,"
    " \"initializer_range\": 0.02, \"intermediate_size\": 5632, \"max_position_embeddings\": 2048,"
    " \"model_type\": \"llama\", \"num_attention_heads\": 32, \"num_hidden_layers\": 22,"
    " \"num_key_value_heads\": 4, \"pretraining_tp\": 1, \"rms_norm_eps\": 1e-05,"
    " \"rope_scaling\": null, \"rope_theta\": 10000.0, \"tie_word_embeddings\": false,"
    " \"torch_dtype\": \"bfloat16\", \"transformers_version\": \"4.35.0\", \"use_cache\": true,"
    " \"vocab_size\": 32000}";

static void test_tinyllama(void **state) {
    (void)state;
    HfConfig c;
    CkError err = {{0}};
    assert_int_equal(hf_config_parse(&c, TINYLLAMA, "config.json", &err), 0);
    assert_int_equal(c.model.dim, 2048);
    assert_int_equal(c.model.hidden_dim, 5632);
    assert_int_equal(c.model.n_layers, 22);
    assert_int_equal(c.model.n_heads, 32);
    assert_int_equal(c.model.n_kv_heads, 4);
    assert_int_equal(c.model.vocab_size, 32000);
    assert_int_equal(c.model.seq_len, 2048);
    assert_float_equal(c.model.norm_eps, 1e-5f, 0);
    assert_float_equal(c.model.rope_theta, 10000.0f, 0);
    assert_int_equal(c.model.shared_classifier, 0);
    assert_int_equal(c.model.rope_style, ROPE_HALF_SPLIT);
    assert_int_equal(c.bos_token_id, 1);
    assert_int_equal(c.eos_token_id, 2);
}

static void test_round_trip_and_defaults(void **state) {
    (void)state;
    HfConfig c, back;
    CkError err = {{0}};
    assert_int_equal(hf_config_parse(&c, TINYLLAMA, "config.json", &err), 0);
    c.model.shared_classifier = 1;
    char *text = hf_config_to_json(&c);
    assert_non_null(strstr(text, "\"rms_norm_eps\":\t1e-05"));
    assert_int_equal(hf_config_parse(&back, text, "out", &err), 0);
    assert_memory_equal(&back.model, &c.model, sizeof c.model);
    free(text);
    /* num_key_value_heads defaults to num_attention_heads; eos may be a list (Llama 3) */
    const char *minimal = "{\"architectures\": [\"MistralForCausalLM\"], \"hidden_size\": 64,"
                          " \"intermediate_size\": 172, \"num_hidden_layers\": 2,"
                          " \"num_attention_heads\": 8, \"vocab_size\": 512,"
                          " \"max_position_embeddings\": 512, \"sliding_window\": null,"
                          " \"eos_token_id\": [128001, 128009]}";
    assert_int_equal(hf_config_parse(&c, minimal, "m", &err), 0);
    assert_int_equal(c.model.n_kv_heads, 8);
    assert_int_equal(c.eos_token_id, 128001);
    assert_int_equal(c.bos_token_id, -1);
    assert_float_equal(c.model.norm_eps, 1e-6f, 0); /* transformers' LlamaConfig default */
}

/* Replaces `from` by `to` in the TinyLlama config and expects the parse to fail with msg. */
static void expect_refused(const char *from, const char *to, const char *msg) {
    char text[4096];
    const char *at = strstr(TINYLLAMA, from);
    assert_non_null(at);
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - TINYLLAMA), TINYLLAMA, to,
             at + strlen(from));
    HfConfig c;
    CkError err = {{0}};
    assert_int_equal(hf_config_parse(&c, text, "config.json", &err), -1);
    assert_string_equal(err.msg, msg);
}

static void test_refusals(void **state) {
    (void)state;
    expect_refused("\"LlamaForCausalLM\"", "\"GPT2LMHeadModel\"",
                   "config.json: unsupported architecture \"GPT2LMHeadModel\" (cutkit reads "
                   "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, "
                   "GemmaForCausalLM and Gemma2ForCausalLM)");
    expect_refused("\"rope_scaling\": null",
                   "\"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4}",
                   "config.json: unsupported option \"rope_scaling.type\": \"yarn\" (cutkit "
                   "implements default, linear and llama3)");
    expect_refused("\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"linear\"}",
                   "config.json: field \"rope_scaling.factor\" must be a number");
    expect_refused("\"attention_bias\": false", "\"attention_bias\": true",
                   "config.json: unsupported option \"attention_bias\" (a bias on o_proj is not "
                   "implemented)");
    expect_refused("\"hidden_act\": \"silu\"", "\"hidden_act\": \"relu\"",
                   "config.json: unsupported option \"hidden_act\": \"relu\" (cutkit implements "
                   "silu, gelu, gelu_pytorch_tanh and gelu_new)");
    expect_refused("\"use_cache\": true", "\"sliding_window\": 1024",
                   "config.json: unsupported option \"sliding_window\": 1024 (a window shorter "
                   "than max_position_embeddings is not implemented for LlamaForCausalLM)");
    expect_refused("\"hidden_size\": 2048, ", "", "config.json: missing field \"hidden_size\"");
    expect_refused("\"num_hidden_layers\": 22", "\"num_hidden_layers\": 2.5",
                   "config.json: field \"num_hidden_layers\" must be an integer");
    expect_refused("\"num_attention_heads\": 32", "\"num_attention_heads\": 30",
                   "config.json: n_heads 30 does not divide dim 2048");
    expect_refused("\"tie_word_embeddings\": false", "\"tie_word_embeddings\": \"no\"",
                   "config.json: field \"tie_word_embeddings\" must be true or false");
    /* found by tests/fuzz/fuzz_hf_config.c: out-of-range numbers were cast (undefined) */
    expect_refused("\"bos_token_id\": 1", "\"bos_token_id\": 1e50",
                   "config.json: field \"bos_token_id\" must be a token id or a list of them");
    expect_refused("\"rms_norm_eps\": 1e-05", "\"rms_norm_eps\": 1e300",
                   "config.json: field \"rms_norm_eps\" must be a number in float range");
    HfConfig c;
    CkError err = {{0}};
    assert_int_equal(hf_config_parse(&c, "{not json", "config.json", &err), -1);
    assert_string_equal(err.msg, "config.json: not valid JSON near byte 2 (line 1)");
    assert_int_equal(hf_config_parse(&c, "[1]", "config.json", &err), -1);
    assert_string_equal(err.msg, "config.json: not a JSON object");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tinyllama),
        cmocka_unit_test(test_round_trip_and_defaults),
        cmocka_unit_test(test_refusals),
    };
    return test_exit_code(cmocka_run_group_tests(tests, NULL, NULL));
}
