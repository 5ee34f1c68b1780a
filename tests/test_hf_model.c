/* test_hf_model.c — Hugging Face folders: the embedded stories260K converted to a folder and
 * back gives the same logits, and identical weight bytes as llama2.c; BF16 copies; shards;
 * missing, extra and misshapen tensors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include "formats/convert.h"
#include "formats/embedded.h"
#include "formats/hf_model.h"
#include "formats/llama2c.h"
#include "model/model.h"

static Model base;
static char *dir;

static int setup(void **state) {
    (void)state;
    size_t size;
    const void *data = embedded_model(&size);
    CkError err = {{0}};
    if (llama2c_load(&base, data, size, &err) != 0) return -1;
    dir = test_temp_dir();
    return dir ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    model_free(&base);
    int rc = test_remove_dir(dir);
    free(dir);
    return rc;
}

/* Logits (V) after the tokens "BOS Once upon a time", at the last position. */
static void last_logits(const Model *m, float *out) {
    const int tokens[5] = {1, 403, 407, 261, 378};
    Activations a;
    CkError err = {{0}};
    assert_int_equal(activations_init(&a, m, 5, 5, 0, &err), 0);
    int offsets[2] = {0, 5};
    TokenBatch b = {1, offsets, tokens};
    assert_int_equal(model_forward(m, &a, &b, NULL, NULL, &err), 0);
    model_logits_row(m, &a, 4, out, NULL);
    activations_free(&a);
}

static double max_diff(const float *a, const float *b, int n) {
    double d = 0;
    for (int i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

static HfConfig config_of(const Model *m) {
    HfConfig c = {.model = m->config, .bos_token_id = 1, .eos_token_id = 2};
    return c;
}

static void test_round_trip(void **state) {
    (void)state;
    CkError err = {{0}};
    char folder[512];
    snprintf(folder, sizeof folder, "%s/hf-f32", dir);
    HfConfig cfg = config_of(&base);
    assert_int_equal(hf_model_save(&base, &cfg, folder, ST_F32, "cutkit test", &err), 0);
    Model hf;
    HfConfig loaded;
    assert_int_equal(hf_model_load(&hf, &loaded, folder, &err), 0);
    assert_int_equal(hf.config.rope_style, ROPE_HALF_SPLIT);
    float ref[512], got[512];
    last_logits(&base, ref);
    last_logits(&hf, got);
    printf("llama2.c -> Hugging Face: max logit difference %.3g\n", max_diff(ref, got, 512));
    assert_close(max_diff(ref, got, 512), 0, 1e-5);
    /* and back to llama2.c: the weights are the same bytes */
    model_set_rope_style(&hf, ROPE_INTERLEAVED);
    char path[600];
    snprintf(path, sizeof path, "%s/back.bin", dir);
    assert_int_equal(llama2c_save(&hf, path, &err), 0);
    size_t size, orig_size;
    char *bytes = test_read_file(path, &size);
    const unsigned char *orig = embedded_model(&orig_size);
    assert_int_equal(size, orig_size);
    size_t before_rope = 28 + base.tensors[PARAM_WCLS].offset * sizeof(float);
    assert_memory_equal(bytes, orig, before_rope);
    free(bytes);
    model_free(&hf);
}

/* A copy of the folder in a 16-bit dtype loads and gives logits within that dtype's
 * precision: bf16 keeps 8 significant bits, f16 11 (weights here are far from f16's range
 * limits), so f16 must also be clearly closer than bf16. */
static double half_copy_difference(SafetensorsDtype dtype, const char *name) {
    CkError err = {{0}};
    char folder[512];
    snprintf(folder, sizeof folder, "%s/hf-%s", dir, name);
    HfConfig cfg = config_of(&base);
    assert_int_equal(hf_model_save(&base, &cfg, folder, dtype, NULL, &err), 0);
    Model hf;
    HfConfig loaded;
    assert_int_equal(hf_model_load(&hf, &loaded, folder, &err), 0);
    float ref[512], got[512];
    last_logits(&base, ref);
    last_logits(&hf, got);
    double d = max_diff(ref, got, 512), scale = 0;
    for (int i = 0; i < 512; i++) scale = fmax(scale, fabs(ref[i]));
    printf("%s: max logit difference %.3g of max |logit| %.3g\n", name, d, scale);
    assert_true(d > 0.0);
    assert_close(d, 0, 0.05 * scale);
    model_free(&hf);
    return d;
}

static void test_bf16_and_f16_copies(void **state) {
    (void)state;
    double bf16 = half_copy_difference(ST_BF16, "bf16");
    double f16 = half_copy_difference(ST_F16, "f16");
    assert_true(f16 < bf16 / 4); /* 3 more mantissa bits: about 8x closer */
}

/* Writes the given parameter tensors of m into a safetensors file under HF names. */
static void write_shard(const Model *m, const char *path, const ParamId *ids, int n_ids,
                        const char *extra) {
    SafetensorsWriter w;
    safetensors_writer_init(&w);
    CkError err = {{0}};
    char name[128];
    for (int k = 0; k < n_ids; k++) {
        const ParamTensor *t = &m->tensors[ids[k]];
        int layers = t->per_layer ? m->config.n_layers : 1;
        for (int l = 0; l < layers; l++) {
            hf_param_name(ids[k], l, name, sizeof name);
            size_t shape[2] = {(size_t)t->shape[0], (size_t)t->shape[1]};
            assert_int_equal(safetensors_writer_add(&w, name, ST_F32, t->rank, shape,
                                                    model_param(m, ids[k], l), &err),
                             0);
        }
    }
    if (extra) {
        size_t shape[1] = {4};
        assert_int_equal(safetensors_writer_add(&w, extra, ST_F32, 1, shape, m->params, &err), 0);
    }
    assert_int_equal(safetensors_write(&w, path, &err), 0);
    safetensors_writer_free(&w);
}

static void test_shards_and_errors(void **state) {
    (void)state;
    CkError err = {{0}};
    char folder[512], path[700];
    snprintf(folder, sizeof folder, "%s/hf-sharded", dir);
    HfConfig cfg = config_of(&base);
    Model half = base;
    half.params = malloc(base.n_params * sizeof(float));
    memcpy(half.params, base.params, base.n_params * sizeof(float));
    model_set_rope_style(&half, ROPE_HALF_SPLIT);
    assert_int_equal(hf_model_save(&half, &cfg, folder, ST_F32, NULL, &err), 0);
    snprintf(path, sizeof path, "%s/model.safetensors", folder);
    remove(path);
    const ParamId first[] = {PARAM_TOKEN_EMBEDDING, PARAM_RMS_ATT, PARAM_WQ, PARAM_WK, PARAM_WV};
    const ParamId second[] = {PARAM_WO, PARAM_RMS_FFN, PARAM_W1,
                              PARAM_W2, PARAM_W3,      PARAM_RMS_FINAL};
    snprintf(path, sizeof path, "%s/model-00001-of-00002.safetensors", folder);
    write_shard(&half, path, first, 5, NULL);
    snprintf(path, sizeof path, "%s/model-00002-of-00002.safetensors", folder);
    write_shard(&half, path, second, 6, NULL);
    /* the index: every tensor name mapped to its shard */
    char *index = malloc(65536);
    strcpy(index, "{\"metadata\": {}, \"weight_map\": {");
    for (int k = 0; k < 11; k++) {
        ParamId id = k < 5 ? first[k] : second[k - 5];
        int layers = half.tensors[id].per_layer ? 5 : 1;
        for (int l = 0; l < layers; l++) {
            char name[128];
            hf_param_name(id, l, name, sizeof name);
            sprintf(index + strlen(index), "%s\"%s\": \"model-0000%d-of-00002.safetensors\"",
                    (k || l) ? ", " : "", name, k < 5 ? 1 : 2);
        }
    }
    strcat(index, "}}");
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", folder);
    assert_int_equal(test_write_file(path, index, strlen(index)), 0);
    Model hf;
    HfConfig loaded;
    assert_int_equal(hf_model_load(&hf, &loaded, folder, &err), 0);
    float ref[512], got[512];
    last_logits(&base, ref);
    last_logits(&hf, got);
    assert_close(max_diff(ref, got, 512), 0, 1e-5);
    model_free(&hf);
    free(index);
    remove(path);

    /* one file without the final norm: named as missing */
    const ParamId all_but_norm[] = {
        PARAM_TOKEN_EMBEDDING, PARAM_RMS_ATT, PARAM_WQ, PARAM_WK, PARAM_WV, PARAM_WO,
        PARAM_RMS_FFN,         PARAM_W1,      PARAM_W2, PARAM_W3};
    snprintf(path, sizeof path, "%s/model.safetensors", folder);
    write_shard(&half, path, all_but_norm, 10, NULL);
    assert_int_equal(hf_model_load(&hf, &loaded, folder, &err), -1);
    char expect[800];
    snprintf(expect, sizeof expect, "%s: missing tensor model.norm.weight", folder);
    assert_string_equal(err.msg, expect);
    /* an extra tensor is listed */
    const ParamId all[] = {
        PARAM_TOKEN_EMBEDDING, PARAM_RMS_ATT, PARAM_WQ, PARAM_WK, PARAM_WV,       PARAM_WO,
        PARAM_RMS_FFN,         PARAM_W1,      PARAM_W2, PARAM_W3, PARAM_RMS_FINAL};
    write_shard(&half, path, all, 11, "model.layers.0.self_attn.q_proj.bias");
    assert_int_equal(hf_model_load(&hf, &loaded, folder, &err), -1);
    snprintf(expect, sizeof expect,
             "%s: 1 extra tensor the config does not use: model.layers.0.self_attn.q_proj.bias",
             folder);
    assert_string_equal(err.msg, expect);
    /* a config that disagrees with the tensors' shapes */
    snprintf(path, sizeof path, "%s/config.json", folder);
    size_t size;
    char *json = test_read_file(path, &size);
    char *at = strstr(json, "\"intermediate_size\":\t172");
    assert_non_null(at);
    memcpy(at + strlen("\"intermediate_size\":\t"), "173", 3);
    assert_int_equal(test_write_file(path, json, size), 0);
    snprintf(path, sizeof path, "%s/model.safetensors", folder);
    write_shard(&half, path, all, 11, NULL);
    assert_int_equal(hf_model_load(&hf, &loaded, folder, &err), -1);
    snprintf(expect, sizeof expect,
             "%s: tensor model.layers.0.mlp.gate_proj.weight has shape [172, 64]; the config "
             "needs [173, 64]",
             folder);
    assert_string_equal(err.msg, expect);
    free(json);
    free(half.params);
}

/* Reads a JSON array of numbers from the fixture into out (n values). */
static void fixture_array(const char *json, const char *key, double *out, int n) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\": [", key);
    const char *p = strstr(json, pattern);
    assert_non_null(p);
    p += strlen(pattern);
    for (int i = 0; i < n; i++) {
        char *end;
        out[i] = strtod(p, &end);
        assert_true(end != p);
        p = end + 1; /* the comma */
    }
}

/* Against tests/fixtures/hf_logits.json (transformers' own permutation and rotate_half, in
 * PyTorch float64): the folder `cutkit convert` writes has q/k rows in Hugging Face's order and
 * gives Hugging Face's logits. */
static void test_matches_transformers_convention(void **state) {
    (void)state;
    char *json = test_read_file(CUTKIT_SOURCE_DIR "/tests/fixtures/hf_logits.json", NULL);
    assert_non_null(json);
    CkError err = {{0}};
    char folder[512], path[600];
    snprintf(folder, sizeof folder, "%s/hf-ref", dir);
    HfConfig cfg = config_of(&base);
    assert_int_equal(hf_model_save(&base, &cfg, folder, ST_F32, NULL, &err), 0);
    snprintf(path, sizeof path, "%s/model.safetensors", folder);
    SafetensorsFile f;
    assert_int_equal(safetensors_open(&f, path, &err), 0);
    const char *names[2] = {"model.layers.0.self_attn.q_proj.weight",
                            "model.layers.0.self_attn.k_proj.weight"};
    const char *keys[2] = {"q_proj0_row_dots", "k_proj0_row_dots"};
    for (int k = 0; k < 2; k++) {
        const SafetensorsTensor *t = safetensors_find(&f, names[k]);
        assert_non_null(t);
        int rows = (int)t->shape[0], cols = (int)t->shape[1];
        float *w = malloc(sizeof(float) * rows * cols);
        double *want = malloc(sizeof(double) * rows);
        assert_int_equal(safetensors_read_f32(&f, t, w, &err), 0);
        fixture_array(json, keys[k], want, rows);
        for (int r = 0; r < rows; r++) {
            double dot = 0;
            for (int c = 0; c < cols; c++) dot += (double)w[r * cols + c] * (c + 1);
            assert_float_equal(dot, want[r], 1e-3);
        }
        free(w);
        free(want);
    }
    safetensors_close(&f);
    Model hf;
    HfConfig loaded;
    assert_int_equal(hf_model_load(&hf, &loaded, folder, &err), 0);
    float got[512];
    double want[512];
    last_logits(&hf, got);
    fixture_array(json, "logits_last", want, 512);
    double d = 0;
    for (int i = 0; i < 512; i++) d = fmax(d, fabs(got[i] - want[i]));
    printf("against transformers' convention (PyTorch float64): max logit difference %.3g\n", d);
    assert_close(d, 0, 1e-4);
    model_free(&hf);
    free(json);
}

/* convert_model (what `cutkit convert` does): embedded -> Hugging Face folder with the
 * tokenizer -> llama2.c file gives the original weight bytes; a llama2.c destination gets no
 * tokenizer; a missing source is refused before anything is written. */
static void test_convert_round_trip(void **state) {
    (void)state;
    char folder[600], back[600];
    snprintf(folder, sizeof folder, "%s/converted", dir);
    snprintf(back, sizeof back, "%s/back.bin", dir);
    ConvertOptions o;
    convert_options_init(&o);
    o.to = folder;
    ConvertResult r;
    CkError err = {{0}};
    assert_int_equal(convert_model(&o, &r, &err), 0);
    assert_false(r.to_llama2c);
    assert_true(r.model_written && r.tokenizer_written);
    char path[700];
    snprintf(path, sizeof path, "%s/tokenizer.json", folder);
    Tokenizer t;
    assert_int_equal(tokenizer_open(&t, path, &err), 0);
    assert_int_equal(t.vocab_size, 512);
    tokenizer_free(&t);
    convert_options_init(&o);
    o.from = folder;
    o.to = back;
    assert_int_equal(convert_model(&o, &r, &err), 0);
    assert_true(r.to_llama2c && r.model_written && !r.tokenizer_written);
    size_t size, orig_size;
    char *bytes = test_read_file(back, &size);
    const char *orig = embedded_model(&orig_size);
    assert_int_equal(size, orig_size);
    /* weights: everything before the legacy RoPE tables (header + 260,032 floats) */
    assert_memory_equal(bytes, orig, 28 + 260032 * 4);
    free(bytes);
    o.from = "/nonexistent/model.bin";
    assert_int_equal(convert_model(&o, &r, &err), -1);
    assert_false(r.model_written);
    assert_string_equal(err.msg, "/nonexistent/model.bin: cannot open: No such file or directory");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_matches_transformers_convention),
        cmocka_unit_test(test_bf16_and_f16_copies),
        cmocka_unit_test(test_shards_and_errors),
        cmocka_unit_test(test_convert_round_trip),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
