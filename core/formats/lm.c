/* lm.c — choosing and opening a model and its tokenizer. */
#include "formats/lm.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/embedded.h"
#include "formats/hf_model.h"
#include "formats/llama2c.h"
#include "formats/peft.h"

/* The tokenizer that goes with a model: an explicit path; else, beside the model, a Hugging
 * Face folder's tokenizer.json or a llama2.c file's tokenizer.bin; else the embedded tok512
 * when the vocabulary has its size. Its vocabulary must fit the model's. */
static int open_tokenizer(LanguageModel *lm, const char *model_path, int model_is_dir,
                          const char *tokenizer_path, CkError *err) {
    const int vocab = lm->model.config.vocab_size;
    char beside[1024];
    if (!tokenizer_path && model_path) {
        if (model_is_dir) {
            snprintf(beside, sizeof beside, "%.1000s/tokenizer.json", model_path);
        } else {
            const char *slash = strrchr(model_path, '/');
            int dir_len = slash ? (int)(slash - model_path) : 1;
            snprintf(beside, sizeof beside, "%.*s/tokenizer.bin", dir_len > 1000 ? 1000 : dir_len,
                     slash ? model_path : ".");
        }
        if (access(beside, R_OK) == 0) tokenizer_path = beside;
    }
    if (tokenizer_path) {
        snprintf(lm->tokenizer_source, sizeof lm->tokenizer_source, "%.500s", tokenizer_path);
        if (tokenizer_open(&lm->tokenizer, tokenizer_path, err) != 0) return -1;
        /* a tokenizer may have fewer ids than the embedding (padded vocabularies), never more */
        if (lm->tokenizer.vocab_size > vocab)
            return ck_fail(err,
                           "vocab mismatch: the tokenizer %s has %d tokens but the model only %d",
                           tokenizer_path, lm->tokenizer.vocab_size, vocab);
        return 0;
    }
    if (vocab != EMBEDDED_TOKENIZER_VOCAB)
        return ck_fail(err,
                       "vocab mismatch: the model has %d tokens but the embedded tokenizer "
                       "has %d; pass --tokenizer PATH",
                       vocab, EMBEDDED_TOKENIZER_VOCAB);
    snprintf(lm->tokenizer_source, sizeof lm->tokenizer_source, "embedded:tok512");
    return embedded_tokenizer_load(&lm->tokenizer, err);
}

int lm_open(LanguageModel *lm, const char *model_path, const char *tokenizer_path, CkError *err) {
    return lm_open_held(lm, model_path, tokenizer_path, WEIGHT_F32, err);
}

int lm_open_adapted(LanguageModel *lm, const char *model_path, const char *tokenizer_path,
                    WeightDtype held, const char *adapter_dir, LoraAdapters *ad, int *have_ad,
                    CkError *err) {
    *have_ad = 0;
    if (lm_open_held(lm, model_path, tokenizer_path, held, err) != 0) return -1;
    if (!adapter_dir) return 0;
    if (peft_load(ad, &lm->model, adapter_dir, err) != 0) {
        lm_close(lm);
        return -1;
    }
    if (held != WEIGHT_F32) {
        *have_ad = 1;
        return 0;
    }
    const int rc = lora_merge(&lm->model, ad, err);
    lora_free(ad);
    if (rc != 0) lm_close(lm);
    return rc;
}

int lm_parse_base_dtype(const char *s, WeightDtype *out, CkError *err) {
    static const struct {
        const char *name;
        WeightDtype dtype;
    } choices[] = {
        {"f32", WEIGHT_F32}, {"bf16", WEIGHT_BF16}, {"f16", WEIGHT_F16}, {"int8", WEIGHT_Q8}};
    for (size_t i = 0; s && i < sizeof choices / sizeof choices[0]; i++)
        if (!strcmp(s, choices[i].name)) {
            *out = choices[i].dtype;
            return 0;
        }
    return ck_fail(err, "--base-dtype: expected f32, bf16, f16 or int8, got \"%s\"", s ? s : "");
}

int lm_open_held(LanguageModel *lm, const char *model_path, const char *tokenizer_path,
                 WeightDtype held, CkError *err) {
    memset(lm, 0, sizeof *lm);
    int rc;
    struct stat st;
    const int is_dir = model_path && stat(model_path, &st) == 0 && S_ISDIR(st.st_mode);
    if (!is_dir && held != WEIGHT_F32)
        return ck_fail(err,
                       "%s: --base-dtype %s needs a Hugging Face folder; llama2.c and embedded "
                       "models are held as f32",
                       model_path ? model_path : "embedded:stories260K", model_held_name(held));
    if (is_dir) {
        snprintf(lm->model_source, sizeof lm->model_source, "%.500s", model_path);
        HfConfig cfg;
        rc = hf_model_load_held(&lm->model, &cfg, model_path, held, err);
    } else if (model_path) {
        snprintf(lm->model_source, sizeof lm->model_source, "%.500s", model_path);
        rc = llama2c_load_file(&lm->model, model_path, err);
    } else {
        snprintf(lm->model_source, sizeof lm->model_source, "embedded:stories260K");
        rc = embedded_model_load(&lm->model, err);
    }
    if (rc == 0) rc = open_tokenizer(lm, model_path, is_dir, tokenizer_path, err);
    if (rc != 0) lm_close(lm);
    return rc;
}

void lm_close(LanguageModel *lm) {
    model_free(&lm->model);
    tokenizer_free(&lm->tokenizer);
}
