/* test_peft.c — PEFT adapter folders: save and load give the same adapter; an adapter
 * trained on the llama2.c (interleaved) base gives the same logits when loaded onto the
 * Hugging Face copy of that base (q/k B rows follow the base's permutation); refusals. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

#include "formats/embedded.h"
#include "util/fileio.h"
#include "formats/hf_model.h"
#include "formats/llama2c.h"
#include "model/lora.h"
#include "formats/peft.h"
#include "util/rng.h"

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

static void logits_with(const Model *m, const LoraAdapters *ad, float *out) {
    const int tokens[6] = {1, 403, 407, 261, 378, 432};
    Activations a;
    CkError err = {{0}};
    assert_int_equal(activations_init(&a, m, 6, 6, 0, &err), 0);
    int offsets[2] = {0, 6};
    TokenBatch b = {1, offsets, tokens};
    assert_int_equal(model_forward(m, &a, &b, NULL, ad, &err), 0);
    model_logits_row(m, &a, 5, out, NULL);
    activations_free(&a);
}

static void make_adapter(LoraAdapters *ad, const char *targets) {
    LoraConfig c = {4, 8.0f, 0.05f, 0};
    CkError err = {{0}};
    assert_int_equal(lora_parse_targets(targets, &c.target_mask, &err), 0);
    assert_int_equal(lora_init(ad, &base, &c, 11, &err), 0);
    /* B is zero after PEFT's init; give it values so the adapter changes the model */
    Rng r;
    rng_seed(&r, 99);
    for (int i = 0; i < ad->n_tensors; i++)
        if (ad->tensors[i].is_b)
            for (size_t j = 0; j < ad->tensors[i].size; j++)
                ad->params[ad->tensors[i].offset + j] = 0.2f * (rng_float(&r) - 0.5f);
}

static void test_save_load_and_permutation(void **state) {
    (void)state;
    LoraAdapters ad, back, on_hf;
    make_adapter(&ad, "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj");
    CkError err = {{0}};
    char folder[512];
    snprintf(folder, sizeof folder, "%s/adapter", dir);
    assert_int_equal(peft_save(&ad, &base, folder, "cutkit/stories260K", "test", &err), 0);
    /* back onto the same base: identical numbers */
    assert_int_equal(peft_load(&back, &base, folder, &err), 0);
    assert_int_equal(back.n_params, ad.n_params);
    assert_memory_equal(back.params, ad.params, ad.n_params * sizeof(float));
    assert_int_equal(back.config.rank, 4);
    assert_float_equal(back.config.alpha, 8.0f, 0);
    assert_float_equal(back.config.dropout, 0.05f, 1e-7);
    /* onto the Hugging Face copy of the base: the same function */
    char hf_dir[600];
    snprintf(hf_dir, sizeof hf_dir, "%s/base-hf", dir);
    HfConfig cfg = {.model = base.config, .bos_token_id = 1, .eos_token_id = 2};
    assert_int_equal(hf_model_save(&base, &cfg, hf_dir, ST_F32, NULL, &err), 0);
    Model hf;
    assert_int_equal(hf_model_load(&hf, &cfg, hf_dir, &err), 0);
    assert_int_equal(peft_load(&on_hf, &hf, folder, &err), 0);
    float plain[512], ref[512], got[512];
    logits_with(&base, NULL, plain);
    logits_with(&base, &ad, ref);
    logits_with(&hf, &on_hf, got);
    double moved = 0, d = 0;
    for (int i = 0; i < 512; i++) {
        moved = fmax(moved, fabs(ref[i] - plain[i]));
        d = fmax(d, fabs(ref[i] - got[i]));
    }
    printf("adapter moves logits by up to %.3g; base vs HF copy with the adapter: %.3g\n", moved,
           d);
    assert_true(moved > 0.1);
    assert_close(d, 0, 1e-4);
    /* the config names the modules in PEFT's words */
    char path[700];
    snprintf(path, sizeof path, "%s/adapter_config.json", folder);
    char *json = fileio_read_text(path, 1 << 20, NULL, &err);
    assert_non_null(strstr(json, "\"peft_type\":\t\"LORA\""));
    assert_non_null(strstr(json, "\"gate_proj\""));
    assert_non_null(strstr(json, "\"base_model_name_or_path\":\t\"cutkit/stories260K\""));
    assert_non_null(strstr(json, "\"lora_dropout\":\t0.05"));
    free(json);
    lora_free(&ad);
    lora_free(&back);
    lora_free(&on_hf);
    model_free(&hf);
}

static void test_refusals(void **state) {
    (void)state;
    LoraAdapters ad, back;
    make_adapter(&ad, "gate_proj,up_proj,down_proj");
    CkError err = {{0}};
    char folder[512], path[700];
    snprintf(folder, sizeof folder, "%s/adapter-mlp", dir);
    assert_int_equal(peft_save(&ad, &base, folder, "x", NULL, &err), 0);
    snprintf(path, sizeof path, "%s/adapter_config.json", folder);
    const char *dora = "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"use_dora\": true,"
                       " \"target_modules\": [\"gate_proj\"]}";
    assert_int_equal(test_write_file(path, dora, strlen(dora)), 0);
    assert_int_equal(peft_load(&back, &base, folder, &err), -1);
    char expect[800];
    snprintf(expect, sizeof expect, "%s: unsupported PEFT option \"use_dora\"", path);
    assert_string_equal(err.msg, expect);
    const char *unknown = "{\"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"c_attn\"]}";
    assert_int_equal(test_write_file(path, unknown, strlen(unknown)), 0);
    assert_int_equal(peft_load(&back, &base, folder, &err), -1);
    assert_non_null(strstr(err.msg, "unknown LoRA target module \"c_attn\""));
    /* a config asking for more modules than the file holds */
    const char *more = "{\"r\": 4, \"lora_alpha\": 8, \"target_modules\": [\"gate_proj\", "
                       "\"q_proj\"]}";
    assert_int_equal(test_write_file(path, more, strlen(more)), 0);
    assert_int_equal(peft_load(&back, &base, folder, &err), -1);
    assert_non_null(strstr(err.msg, "missing tensor base_model.model.model.layers.0.self_attn."
                                    "q_proj.lora_A.weight"));
    lora_free(&ad);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_load_and_permutation),
        cmocka_unit_test(test_refusals),
    };
    return test_exit_code(cmocka_run_group_tests(tests, setup, teardown));
}
